//! Traffic control on nginx (issue 17): session affinity, header routing, flag routing, one-by-one rollback with drain.
//!
//! Through the real `sluice` binary with the example environment
//! (`env/localenv.py`) and real nginx 1.22 (`env/nginx.conf`):
//! - `target.affinity`: at a 20% canary every one of 200 users gets one
//!   version on every request, and about 20% of them the candidate —
//!   through nginx (`hash … consistent`) and through the local router;
//! - `target.canary-header`: `X-Canary: always` reaches the candidate even
//!   at weight 0, `never` stays on stable, anything else by the weights;
//! - a bad `affinity` block fails the run naming the key;
//! - a rolling deploy whose batch 2 fails its health check restores batch
//!   1, and a remediate `rollback` of a rolling release, both one instance
//!   at a time with a drain: 0 failed of 1000 requests through nginx
//!   (the `delivery_switch` load).
//!
//! - feature flags on nginx (`split_clients` on `X-User`): for 1000 users
//!   the version nginx serves is the one `flags::nginx_bucket` predicts,
//!   at 5%, 25% and 50% (a user once in stays in), and the promote
//!   removes the flag; a bad 2.0.0 behind a flag is aborted, its flag
//!   removed, and remediate resolves it (200 users all on 1.0.0).
//!
//! Needs `python3`, `tar` and nginx (scripts/setup-delivery-services.sh).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_tests::{repo_root, Project};

use super::delivery_demo::{copy_delivery_example, require, wait_for_version, LocalEnv};
use super::delivery_rollback::{failing_check, remediate_stage};
use super::delivery_switch::{
    assert_none_failed, example_pipeline, setup, target_block, under_load, version_with,
    wait_for_nginx, Answer, AFTER, REQUESTS,
};

/// The router port of the example environment.
fn router_port(env: &LocalEnv) -> u16 {
    env.router_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("router port")
}

/// [`example_pipeline`] named `delivery-traffic`.
fn pipeline(p: &Project, file: &str, target: &str, with: &str, more: &str) {
    example_pipeline(p, file, "delivery-traffic", target, with, more);
}

/// Runs `file` for `version`; the run must pass.
fn run_ok(p: &Project, file: &str, version: &str) {
    let run = p.sluice_env(&["run", file], &[("SERVICE_VERSION", version)]);
    assert_eq!(run.code, 0, "{file} {version}\n{}", run.all());
}

/// Waits until `port` answers `version` to 20 requests in a row with
/// `headers`: nginx applies a reload a moment after the command returns,
/// and old workers may still answer a few requests after new ones started.
fn wait_for(port: u16, headers: &[(&str, &str)], version: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut in_a_row = 0;
    while in_a_row < 20 {
        if version_with(port, headers).as_deref() == Ok(version) {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            Instant::now() < deadline,
            "{port} with {headers:?} never answered {version} 20 times in a row"
        );
    }
}

/// 1.0.0 (blue, all traffic), then 2.0.0 as a canary at `weight` (green)
/// with the target's `extra` lines, on `kind` (`nginx`: through the
/// example's nginx; `local`: through the example router). Returns the
/// project, the environment, nginx (if any) and the port to send requests to.
fn canary_at(
    kind: &str,
    weight: u32,
    extra: &str,
) -> (
    Project,
    LocalEnv,
    Option<super::delivery_switch::Nginx>,
    u16,
) {
    let slots = ["blue", "green"];
    let (p, env, nginx, port) = if kind == "nginx" {
        let (p, env, nginx, port) = setup(&slots);
        (p, env, Some(nginx), port)
    } else {
        require("tar");
        let p = Project::new();
        copy_delivery_example(&repo_root().join("examples/delivery"), p.path());
        std::fs::create_dir_all(p.path().join("deploy/production")).expect("mkdir");
        let env = LocalEnv::start(p.path(), "deploy/production", &slots);
        let port = router_port(&env);
        (p, env, None, port)
    };
    let target = target_block(&env, kind, &slots, extra);
    let health =
        "      health-check: { path: /health, retries: 40, interval: 250ms, timeout: 2s }\n";
    pipeline(
        &p,
        "canary.yaml",
        &target,
        &format!("      strategy: canary\n      initial-weight: {weight}\n{health}"),
        "",
    );
    run_ok(&p, "canary.yaml", "1.0.0");
    wait_for_version(port, "1.0.0");
    run_ok(&p, "canary.yaml", "2.0.0");
    wait_for_version(env.port("green"), "2.0.0");
    (p, env, nginx, port)
}

/// 200 users × 5 requests each at a 20% canary with affinity on `X-User`:
/// every user gets one version on all of their requests, and 10–30% of
/// the users get the candidate. Requests without the key are spread by
/// the weights (not all on one server). Returns the users on 2.0.0.
fn assert_affinity(port: u16) -> usize {
    // Until the reload is applied, nginx still sends everyone to 1.0.0;
    // old workers may answer a few requests more after the new ones
    // started (they stop accepting within nginx's reload), hence the pause.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(0..200).any(|_| version_with(port, &[]).as_deref() == Ok("2.0.0")) {
        assert!(Instant::now() < deadline, "the canary never got traffic");
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut by_user: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for round in 0..5 {
        for u in 0..200 {
            let user = format!("user-{u}");
            let v = version_with(port, &[("X-User", &user)])
                .unwrap_or_else(|e| panic!("round {round} {user}: {e}"));
            *by_user.entry(user).or_default().entry(v).or_default() += 1;
        }
    }
    let split: Vec<_> = by_user.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(split.is_empty(), "users that saw both versions: {split:?}");
    let on_canary = by_user.values().filter(|v| v.contains_key("2.0.0")).count();
    eprintln!(
        "affinity: {on_canary} of 200 users on the 20% canary, each on one version for 5 requests"
    );
    assert!(
        (20..=60).contains(&on_canary),
        "{on_canary} of 200 users on the canary (expected about 40)"
    );
    let anonymous: Vec<String> = (0..200)
        .map(|_| version_with(port, &[]).expect("request"))
        .collect();
    let n = anonymous.iter().filter(|v| *v == "2.0.0").count();
    assert!(
        (10..=90).contains(&n),
        "{n} of 200 requests without X-User on the canary"
    );
    on_canary
}

/// Header routing: `X-Canary: always` → 2.0.0, `never` → 1.0.0, other
/// values and none by the weights (`weight_zero`: all 1.0.0).
fn assert_canary_header(port: u16, weight_zero: bool) {
    wait_for(port, &[("X-Canary", "always")], "2.0.0");
    for _ in 0..30 {
        assert_eq!(
            version_with(port, &[("X-Canary", "always")]).as_deref(),
            Ok("2.0.0")
        );
        assert_eq!(
            version_with(port, &[("X-Canary", "never")]).as_deref(),
            Ok("1.0.0")
        );
        if weight_zero {
            assert_eq!(version_with(port, &[]).as_deref(), Ok("1.0.0"));
            assert_eq!(
                version_with(port, &[("X-Canary", "sometimes")]).as_deref(),
                Ok("1.0.0")
            );
        }
    }
}

#[test]
fn canary_header_on_nginx_reaches_the_candidate_at_weight_0() {
    let (p, _env, _nginx, port) =
        canary_at("nginx", 0, "        canary-header: { name: X-Canary }\n");
    assert_canary_header(port, true);
    let conf = p.read("deploy/production/nginx/upstreams.conf");
    assert!(
        conf.contains("map $http_x_canary $sluice_upstream {"),
        "{conf}"
    );
    assert!(conf.contains("always sluice__green;"), "{conf}");
}

#[test]
fn affinity_and_canary_header_on_nginx_at_weight_20() {
    let (p, _env, _nginx, port) = canary_at(
        "nginx",
        20,
        "        affinity: { header: X-User }\n        canary-header: { name: X-Canary }\n",
    );
    assert_affinity(port);
    assert_canary_header(port, false);
    let conf = p.read("deploy/production/nginx/upstreams.conf");
    assert!(
        conf.contains("hash $sluice_affinity_key consistent;"),
        "{conf}"
    );
}

#[test]
fn affinity_and_canary_header_through_the_local_router() {
    let (p, _env, _nginx, port) = canary_at(
        "local",
        20,
        "        affinity: { header: X-User }\n        canary-header: { name: X-Canary }\n",
    );
    assert_affinity(port);
    assert_canary_header(port, false);
    let routing = p.read("deploy/production/routing.json");
    assert!(routing.contains("\"candidate\": \"green\""), "{routing}");
}

#[test]
fn a_bad_affinity_block_fails_the_run_naming_the_key() {
    require("tar");
    let p = Project::new();
    copy_delivery_example(&repo_root().join("examples/delivery"), p.path());
    let target = "      target:\n        kind: nginx\n        root: deploy/production\n        \
                  slots: { blue: \"http://127.0.0.1:9\" }\n        affinity: { header: X-User, \
                  cookie: session }\n";
    pipeline(&p, "bad.yaml", target, "      strategy: canary\n", "");
    let run = p.sluice_env(&["run", "bad.yaml"], &[("SERVICE_VERSION", "1.0.0")]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.all()
            .contains("with.target.affinity: needs exactly one of `header` or `cookie`"),
        "{}",
        run.all()
    );
    assert!(!p.path().join("deploy/production/nginx").exists());
}

/// Four instances, one per batch, on nginx, 1.0.0 everywhere; the
/// pipeline `rolling.yaml` (deploy only) and, with `more`, `more.yaml`
/// (deploy plus `more`). Health checks 250 ms apart, `retries` times.
fn rolling_env(
    retries: u32,
    more: &str,
) -> (Project, LocalEnv, super::delivery_switch::Nginx, u16) {
    let slots = ["instance-0", "instance-1", "instance-2", "instance-3"];
    let (p, env, nginx, port) = setup(&slots);
    let target = target_block(&env, "nginx", &slots, "");
    let with = format!(
        "      strategy: rolling\n      instances: 4\n      batch-size: 1\n      health-check: {{ \
         path: /health, retries: {retries}, interval: 250ms, timeout: 2s }}\n"
    );
    pipeline(&p, "rolling.yaml", &target, &with, "");
    pipeline(
        &p,
        "more.yaml",
        &target,
        &with,
        &more.replace("{target}", &target),
    );
    run_ok(&p, "rolling.yaml", "1.0.0");
    for s in slots {
        wait_for_version(env.port(s), "1.0.0");
    }
    wait_for_nginx(port);
    (p, env, nginx, port)
}

/// Some requests got 2.0.0, and every one after the run got 1.0.0 again.
fn assert_2_0_0_then_1_0_0(versions: &BTreeMap<String, usize>, answers: &[Answer]) {
    assert!(
        versions.get("2.0.0").copied().unwrap_or(0) > 0,
        "{versions:?}"
    );
    assert!(answers[REQUESTS - AFTER..]
        .iter()
        .all(|a| a.as_deref() == Ok("1.0.0")));
}

/// A rolling deploy of a 2.0.0 that cannot start on instance-1 (its
/// health check in batch 2 fails): deploy restores instance-1 and
/// instance-0, one at a time, drained first. 1000 requests through nginx
/// over the run: 0 failed, and 1.0.0 everywhere afterwards.
#[test]
fn a_rolling_deploy_failing_in_batch_2_restores_batch_1_without_failed_requests() {
    let (p, env, _nginx, port) = rolling_env(16, "");
    // 2.0.0's process exits at start on instance-1's port only.
    let quotes = p.read("service/releases/2.0.0/quotes.py");
    p.write(
        "service/releases/2.0.0/quotes.py",
        &format!(
            "import sys\nif \"{}\" in sys.argv:\n    raise SystemExit(\"2.0.0 does not start on \
             instance-1\")\n{quotes}",
            env.port("instance-1")
        ),
    );
    let (answers, run) = under_load(port, Duration::from_millis(12), || {
        p.sluice_env(&["run", "rolling.yaml"], &[("SERVICE_VERSION", "2.0.0")])
    });
    assert_ne!(run.code, 0, "batch 2 must fail\n{}", run.all());
    assert!(
        run.all().contains("failed in batch 2 of 4"),
        "{}",
        run.all()
    );
    let versions = assert_none_failed("rolling restore over nginx", &answers);
    // Batch 1 (instance-0) served 2.0.0 for a while, then went back.
    assert_2_0_0_then_1_0_0(&versions, &answers);
    // instance-1 (down since batch 2 drained it) went back first; then
    // instance-0 was drained while the other three served.
    let history = p.read("deploy/production/history.jsonl");
    assert!(
        history.contains("instance-0=0 instance-1=1 instance-2=1 instance-3=1"),
        "{history}"
    );
    assert!(
        run.all().contains("instance-0→1.0.0, instance-1→1.0.0"),
        "{}",
        run.all()
    );
}

/// A healthy rolling deploy of 2.0.0 whose check fails, then remediate
/// `action: rollback`: every instance goes back to 1.0.0 one at a time,
/// drained first. 1000 requests through nginx over the run (the forward
/// rollout and the rollback): 0 failed, 1.0.0 everywhere afterwards.
#[test]
fn a_remediate_rollback_of_a_rolling_release_fails_no_request_of_1000() {
    let more = failing_check()
        + &remediate_stage(
            "build, deploy, check",
            "{target}      action: rollback\n      verify: { enabled: false }\n",
            NGINX_GRANTS,
        );
    let (p, env, _nginx, port) = rolling_env(40, &more);
    let (answers, run) = under_load(port, Duration::from_millis(16), || {
        p.sluice_env(&["run", "more.yaml"], &[("SERVICE_VERSION", "2.0.0")])
    });
    assert_ne!(run.code, 0, "the check fails the run\n{}", run.all());
    let versions = assert_none_failed("rolling rollback over nginx", &answers);
    assert_2_0_0_then_1_0_0(&versions, &answers);
    for i in 0..4 {
        wait_for_version(env.port(&format!("instance-{i}")), "1.0.0");
    }
    let history = p.read("deploy/production/history.jsonl");
    assert!(
        history.contains("drained instance-3, pointed it back at 1.0.0"),
        "{history}"
    );
}

// ------------------------------------------------------ flags on nginx

/// The flag a `strategy: feature-flag` deploy of 2.0.0 sets.
const FLAG: &str = "release-2.0.0";

/// nginx with blue/green behind it, `ff.yaml` (a feature-flag deploy at
/// 5%), `more.yaml` (the same plus `more`, where `{target}` stands for
/// the target block and `{port}` for nginx's port) and 1.0.0 on blue.
fn flag_env(
    more: &str,
) -> (
    Project,
    LocalEnv,
    super::delivery_switch::Nginx,
    u16,
    String,
) {
    let slots = ["blue", "green"];
    let (p, env, nginx, port) = setup(&slots);
    let target = target_block(
        &env,
        "nginx",
        &slots,
        "        canary-header: { name: X-Canary }\n",
    );
    let with = "      strategy: feature-flag\n      initial-percent: 5\n      health-check: { \
                path: /health, retries: 40, interval: 250ms, timeout: 2s }\n";
    pipeline(&p, "ff.yaml", &target, with, "");
    let more = more
        .replace("{target}", &target)
        .replace("{port}", &port.to_string());
    pipeline(&p, "more.yaml", &target, with, &more);
    run_ok(&p, "ff.yaml", "1.0.0");
    wait_for_version(port, "1.0.0");
    (p, env, nginx, port, target)
}

/// A pipeline `name` with only a `canary` stage over `target`: `steps`
/// (YAML flow list), `promote`.
fn canary_pipeline(p: &Project, name: &str, target: &str, steps: &str, promote: bool) {
    p.write(
        name,
        &format!(
            "version: 1\nname: flag-steps\nstages:\n  canary:\n    uses: {canary}\n    \
             environment: production\n    with:\n{target}      steps: {steps}\n      promote: \
             {promote}\n    grants: {{ workspace: write, network: [\"127.0.0.1:*\"], exec: [nginx] \
             }}\n",
            canary = repo_root().join("dist/plugins/canary.wasm").display(),
        ),
    );
}

/// A `remediate` stage after `deploy` and `failed` (`action: auto`) that
/// verifies 200 users through nginx; `{target}` and `{port}` as in
/// [`flag_env`].
fn verified_remediate(failed: &str) -> String {
    remediate_stage(
        &format!("deploy, {failed}"),
        "{target}      action: auto\n      verify: { url: \"http://127.0.0.1:{port}\", samples: 200, \
         retries: 20, interval: 250ms }\n",
        NGINX_GRANTS,
    )
}

/// The grants of a stage that changes the nginx target.
const NGINX_GRANTS: &str = r#"{ workspace: write, network: ["127.0.0.1:*"], exec: [nginx] }"#;

/// No flag is left, in `flags.json` or in nginx's configuration.
fn assert_no_flag(p: &Project) {
    let flags: serde_json::Value =
        serde_json::from_str(&p.read("deploy/production/flags.json")).expect("flags.json");
    assert_eq!(flags, serde_json::json!({"flags": {}}), "{flags}");
    let conf = p.read("deploy/production/nginx/upstreams.conf");
    assert!(!conf.contains("split_clients"), "{conf}");
}

/// Users `user-0` to `user-199` all get `version` through nginx on `port`.
fn assert_200_users_get(port: u16, version: &str) {
    for i in 0..200 {
        let u = format!("user-{i}");
        assert_eq!(
            version_with(port, &[("X-User", &u)]).as_deref(),
            Ok(version),
            "{u}"
        );
    }
}

/// Waits until nginx routes by the flag at `percent` (a user predicted in
/// at `percent` but not at `before` answers 2.0.0 20 times in a row), then
/// asks once for each of 1000 users. Every answer must be the predicted
/// one ([`sluice_delivery::flags::nginx_in_rollout`]); returns the users
/// on 2.0.0.
fn users_on_the_flag(port: u16, before: f64, percent: f64) -> Vec<String> {
    use sluice_delivery::flags::nginx_in_rollout;
    let users: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let newcomer = users
        .iter()
        .find(|u| nginx_in_rollout(FLAG, u, percent) && !nginx_in_rollout(FLAG, u, before))
        .expect("a user joins between the two percentages");
    wait_for(port, &[("X-User", newcomer)], "2.0.0");
    // Old workers may answer a few requests after the new ones started.
    std::thread::sleep(Duration::from_secs(1));
    let mut wrong = Vec::new();
    let mut on = Vec::new();
    for u in &users {
        let want = if nginx_in_rollout(FLAG, u, percent) {
            "2.0.0"
        } else {
            "1.0.0"
        };
        let got = version_with(port, &[("X-User", u)]).unwrap_or_else(|e| e);
        if got != want {
            wrong.push(format!("{u}: {got}, predicted {want}"));
        }
        if got == "2.0.0" {
            on.push(u.clone());
        }
    }
    eprintln!(
        "flag at {percent}% on nginx: {} of 1000 users on 2.0.0, {} not as predicted",
        on.len(),
        wrong.len()
    );
    assert!(wrong.is_empty(), "not as predicted: {wrong:?}");
    on
}

/// 2.0.0 behind flag `release-2.0.0` on nginx, stepped by `canary` runs
/// to 25% and 50% and promoted: at each step every one of 1000 users gets
/// the version `nginx_bucket` predicts, a user once on 2.0.0 stays there,
/// the shares are near the percentages, and the local router's SHA-256
/// bucketing would have put different users in. The promote removes the
/// flag: everyone on 2.0.0, and nothing routes by `X-User` any more.
#[test]
fn flag_routing_on_nginx_matches_the_prediction_for_1000_users_and_only_grows() {
    let (p, _env, _nginx, port, target) = flag_env("");
    run_ok(&p, "ff.yaml", "2.0.0");
    let flags: serde_json::Value =
        serde_json::from_str(&p.read("deploy/production/flags.json")).expect("flags.json");
    assert_eq!(flags["flags"][FLAG]["percent"], 5.0, "{flags}");
    let conf = p.read("deploy/production/nginx/upstreams.conf");
    assert!(
        conf.contains("split_clients \"release-2.0.0:$http_x_user\" $sluice_flag { 5.00% sluice__green; * sluice__blue; }"),
        "{conf}"
    );
    let mut before = 0.0;
    let mut was_on: Vec<String> = Vec::new();
    for percent in [5u32, 25, 50] {
        if percent > 5 {
            canary_pipeline(
                &p,
                "step.yaml",
                &target,
                &format!("[{{ set-weight: {percent} }}]"),
                false,
            );
            let run = p.sluice(&["run", "step.yaml"]);
            assert_eq!(run.code, 0, "{}", run.all());
        }
        let pct = f64::from(percent);
        let on = users_on_the_flag(port, before, pct);
        if percent == 5 {
            // The canary header wins over the flag, as in the example
            // router; without `X-User` the weights decide (0% to green).
            let outside = (0..1000)
                .map(|i| format!("user-{i}"))
                .find(|u| !on.contains(u))
                .expect("a user outside 5%");
            let (inside, outside) = (on[0].as_str(), outside.as_str());
            for _ in 0..20 {
                let v = |h: &[(&str, &str)]| version_with(port, h).unwrap_or_else(|e| e);
                assert_eq!(v(&[("X-User", inside), ("X-Canary", "never")]), "1.0.0");
                assert_eq!(v(&[("X-User", outside), ("X-Canary", "always")]), "2.0.0");
                assert_eq!(v(&[]), "1.0.0");
            }
        }
        let lost: Vec<&String> = was_on.iter().filter(|u| !on.contains(u)).collect();
        assert!(lost.is_empty(), "left the flag at {percent}%: {lost:?}");
        let n = on.len() as f64;
        assert!(
            (n - pct * 10.0).abs() <= 60.0,
            "{n} of 1000 users at {percent}%"
        );
        let local_differs = (0..1000)
            .map(|i| format!("user-{i}"))
            .filter(|u| sluice_delivery::flags::in_rollout(FLAG, u, pct) != on.contains(u))
            .count();
        assert!(local_differs > 0, "the local router buckets differently");
        before = pct;
        was_on = on;
    }
    canary_pipeline(&p, "promote.yaml", &target, "[{ set-weight: 50 }]", true);
    let run = p.sluice(&["run", "promote.yaml"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_no_flag(&p);
    // A user far outside the flag is on 2.0.0 now.
    let outsider = (0..1000)
        .map(|i| format!("user-{i}"))
        .find(|u| !sluice_delivery::flags::nginx_in_rollout(FLAG, u, 50.0))
        .expect("a user outside 50%");
    wait_for(port, &[("X-User", &outsider)], "2.0.0");
    std::thread::sleep(Duration::from_secs(1));
    assert_200_users_get(port, "2.0.0");
}

/// The example's 2.0.0 (quotes of 10+ gadgets fail) behind a flag on
/// nginx: the canary steps the flag to 25%, its analysis fails, the abort
/// removes the flag (and its `split_clients`), and remediate resolves the
/// incident verifying through nginx; then every one of 200 users gets
/// 1.0.0.
#[test]
fn a_bad_release_behind_a_flag_on_nginx_is_aborted_and_every_user_gets_stable() {
    let more = format!(
        r#"  canary:
    uses: {canary}
    needs: [deploy]
    environment: production
    with:
{{target}}      steps:
        - set-weight: 25
        - analysis:
            metrics:
              - name: error-rate
                provider: {{ synthetic: {{ measure: error-rate, requests: 40, path: "/quote?sku=gadget&qty=12" }} }}
                success-condition: result < 0.02
                failure-condition: result >= 0.05
    grants: {{ workspace: write, network: ["127.0.0.1:*"], exec: [nginx] }}
{remediate}"#,
        canary = repo_root().join("dist/plugins/canary.wasm").display(),
        remediate = verified_remediate("canary"),
    );
    let (p, _env, _nginx, port, _target) = flag_env(&more);
    let run = p.sluice_env(&["run", "more.yaml"], &[("SERVICE_VERSION", "2.0.0")]);
    assert_ne!(run.code, 0, "the canary fails the run\n{}", run.all());
    let record = p.record(&run.run_id());
    assert_eq!(
        record["stages"]["deploy"]["state"],
        "passed",
        "{}",
        run.all()
    );
    assert_eq!(
        record["stages"]["canary"]["outputs"]["decision"],
        "aborted",
        "{}",
        run.all()
    );
    let remediate = &record["stages"]["remediate"];
    assert_eq!(remediate["state"], "passed", "{}", run.all());
    assert_eq!(remediate["outputs"]["status"], "resolved", "{remediate}");
    assert_eq!(remediate["outputs"]["version"], "1.0.0", "{remediate}");
    assert_no_flag(&p);
    let history = p.read("deploy/production/history.jsonl");
    assert!(
        history.contains("release-2.0.0 25% on=green off=blue"),
        "{history}"
    );
    assert!(
        history.contains("release-2.0.0 removed (was 25%"),
        "{history}"
    );
    assert_200_users_get(port, "1.0.0");
}

/// 2.0.0 behind a flag at 5% on nginx and a failing check: remediate
/// (`auto` → `flag`) removes the flag from `flags.json` and from nginx, and
/// its verification of 200 users through nginx resolves the incident;
/// then every one of them gets 1.0.0, among them the users nginx had put
/// on 2.0.0.
#[test]
fn remediate_removes_a_flag_on_nginx_and_verifies_200_users_through_it() {
    let more = failing_check() + &verified_remediate("check");
    let (p, _env, _nginx, port, _target) = flag_env(&more);
    let run = p.sluice_env(&["run", "more.yaml"], &[("SERVICE_VERSION", "2.0.0")]);
    assert_ne!(run.code, 0, "the check fails the run\n{}", run.all());
    let record = p.record(&run.run_id());
    let remediate = &record["stages"]["remediate"];
    assert_eq!(remediate["state"], "passed", "{}", run.all());
    assert_eq!(remediate["outputs"]["action"], "flag", "{remediate}");
    assert_eq!(remediate["outputs"]["status"], "resolved", "{remediate}");
    assert_no_flag(&p);
    let flagged: Vec<String> = (0..200)
        .map(|i| format!("user-{i}"))
        .filter(|u| sluice_delivery::flags::nginx_in_rollout(FLAG, u, 5.0))
        .collect();
    assert!(!flagged.is_empty(), "some of 200 users were in at 5%");
    assert_200_users_get(port, "1.0.0");
}

/// A flag percentage nginx cannot express is refused at configuration
/// time, naming the key and what to write instead; nothing is deployed.
#[test]
fn a_flag_percent_with_three_decimals_is_refused_on_nginx() {
    require("tar");
    let p = Project::new();
    copy_delivery_example(&repo_root().join("examples/delivery"), p.path());
    let target = "      target:\n        kind: nginx\n        root: deploy/production\n        \
                  slots: { blue: \"http://127.0.0.1:9\", green: \"http://127.0.0.1:10\" }\n";
    pipeline(
        &p,
        "bad.yaml",
        target,
        "      strategy: feature-flag\n      initial-percent: 12.345\n",
        "",
    );
    let run = p.sluice_env(&["run", "bad.yaml"], &[("SERVICE_VERSION", "1.0.0")]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.all().contains(
            "with.initial-percent: 12.345 has more than two decimals; nginx's split_clients \
             takes at most two (e.g. 12.35)"
        ),
        "{}",
        run.all()
    );
    assert!(!p.path().join("deploy/production/releases").exists());
}
