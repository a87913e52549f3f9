//! Every host process a stage starts through `exec` ends with the stage.
//!
//! Each stage attempt gets a [`StageProcs`] guard in its store data. The
//! first `exec` of the attempt creates the attempt's *process set*, which
//! holds every program the attempt runs and everything they start (see
//! below for how). The set is ended
//!
//! - when a program exits normally and no other program of the stage is
//!   still running: whatever the stage's programs left running (a `cmd &`,
//!   a daemon) is stopped at once (SIGTERM, then SIGKILL after
//!   [`LEFTOVER_GRACE`]);
//! - when an `exec` call times out: SIGTERM, the kill grace, SIGKILL (to
//!   the whole set when it was the only program running, else to its own
//!   process group);
//! - when the stage ends in any way, its guard is dropped (normal return,
//!   stage timeout, fail-fast cancellation drops the stage's future): the
//!   same, finished on a background thread, which the runner waits for
//!   before it exits ([`stop_all`]);
//! - when the runner gets SIGINT or SIGTERM: [`stop_all`] ends every live
//!   set; a second signal calls [`kill_all_now`].
//!
//! **Concurrent programs** (WIT 0.2 `spawn`): several programs of one
//! stage may run at once, so one exiting must not stop the others. Each
//! program started through `ProcHandle::spawn_program` counts as
//! *running* until its `Running` token is dropped (after its exit status
//! was collected). Leftovers are stopped only when a program exits while
//! no other is running; until then what an exited program left behind
//! keeps running, and it is stopped when the last running program exits
//! or, at the latest, with the stage. A program spawned while leftovers
//! are being stopped waits until that stop is over, so the stop never
//! catches it. Killing one program (`ProcHandle::stop_program`: `kill`,
//! its timeout, dropping its `process`) signals its process group only:
//! what it started in a group or session of its own (`setsid`) is a
//! leftover like any other. The set counts how often the runner signalled
//! all of it (`ProcHandle::signalled`), so that a program dying of a
//! signal meanwhile is reported as killed by the runner.
//!
//! The kill grace is 3 s, or `SLUICE_KILL_GRACE` (a duration as the
//! pipeline file writes one: `500ms`, `10s`; see `sluice_types::duration`).
//!
//! Two ways to hold a set:
//!
//! - **cgroup v2** (preferred): a cgroup `sluice-<runner pid>-<n>` below
//!   the runner's own cgroup. Programs write themselves into its
//!   `cgroup.procs` between fork and exec. Ending it writes `cgroup.kill`
//!   (Linux 5.14+; else SIGKILL to each member until it is empty) and
//!   removes it. The kernel keeps every descendant in it whatever it does
//!   (`setsid`, double fork, re-parenting), unless it may write to some
//!   other cgroup's `cgroup.procs` (a program running as root, or as the
//!   owner of a delegated subtree, can move itself out).
//! - **fallback** (no writable cgroup v2, or `SLUICE_CONTAINMENT=process-group`):
//!   the runner becomes a child subreaper, so every orphan of a program is
//!   re-parented to the runner instead of init. A set is then every
//!   descendant of the runner below the programs the set spawned, plus
//!   processes in their process groups, plus processes seen in the set
//!   before, plus orphans adopted by the runner that belong to no set.
//!   Limits: an orphan that left its process group (`setsid`) before any
//!   sweep saw it cannot be told apart between stages running at once, so
//!   it may be stopped with whichever stage ends first (early, never late);
//!   a process that forks faster than the sweep kills can race it; signals
//!   go by pid, so a pid reused between scan and kill could be hit (only
//!   processes below the runner are scanned, which keeps this to the
//!   runner's own descendants); a process that escapes while the runner is
//!   killed with SIGKILL is adopted by init and survives (with cgroups it
//!   stays in its cgroup, which the next runner names in a warning).
//!
//! Neither catches a process started on the program's behalf by a daemon
//! outside the runner's tree (`systemd-run`, `at`, `docker run`, ssh).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::logpipe::StageLog;

/// Default time between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// Time background processes left by a program that exited get between
/// SIGTERM and SIGKILL (short: nothing waits for them).
pub const LEFTOVER_GRACE: Duration = Duration::from_millis(200);

/// How long to keep sending SIGKILL before giving up on a set (a process
/// in uninterruptible sleep, a fork bomb outrunning the fallback sweep).
const KILL_BOUND: Duration = Duration::from_secs(10);

/// Poll interval while waiting for processes to go.
const POLL: Duration = Duration::from_millis(20);

/// Why a program could not be started in the stage's process set.
#[derive(Debug, thiserror::Error)]
pub enum ProcsError {
    /// The runner is stopping (SIGINT/SIGTERM) or the stage is ending.
    #[error("the stage is being stopped; no new program may start")]
    Stopping,
    /// Starting the program failed (including joining its cgroup).
    #[error("{0}")]
    Spawn(#[source] io::Error),
}

/// How the runner contains processes, chosen once per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Containment {
    /// Stage cgroups are created under this directory (the runner's own
    /// cgroup).
    Cgroup(PathBuf),
    /// Subreaper and `/proc` sweeps; the reason there is no cgroup.
    Fallback(String),
}

static CONTAINMENT: OnceLock<Containment> = OnceLock::new();

/// Choose how processes are contained (once), become a subreaper when
/// there is no cgroup, and clean cgroups a killed runner left behind. The
/// runner calls it at start; the first `exec` calls it otherwise.
pub fn init() -> &'static Containment {
    CONTAINMENT.get_or_init(|| {
        let c = detect();
        match &c {
            Containment::Cgroup(parent) => {
                tracing::debug!(parent = %parent.display(), "stage processes are contained in cgroups");
                clean_stale_cgroups(parent);
            }
            Containment::Fallback(why) => {
                tracing::debug!(reason = %why, "stage processes are contained by the process tree (no cgroup)");
                become_subreaper();
            }
        }
        c
    })
}

fn detect() -> Containment {
    match std::env::var("SLUICE_CONTAINMENT").as_deref() {
        Ok("process-group") | Ok("fallback") => {
            return Containment::Fallback("SLUICE_CONTAINMENT=process-group".into())
        }
        Ok("") | Ok("auto") | Ok("cgroup") | Err(_) => {}
        Ok(other) => tracing::warn!(
            value = other,
            "SLUICE_CONTAINMENT is `auto`, `cgroup` or `process-group`; using auto"
        ),
    }
    match cgroup_parent().and_then(|p| probe_cgroup(&p).map(|()| p)) {
        Ok(parent) => Containment::Cgroup(parent),
        Err(why) => Containment::Fallback(why),
    }
}

/// The runner's own cgroup directory on the cgroup2 mount.
fn cgroup_parent() -> Result<PathBuf, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = parse_own_cgroup(&own).ok_or("the runner is in no cgroup v2 (no `0::` line)")?;
    parse_cgroup2_mounts(&mountinfo)
        .into_iter()
        .find_map(|(root, mount)| cgroup_dir(&mount, &root, &own))
        .ok_or_else(|| format!("no cgroup2 mount shows the runner's cgroup {own}"))
}

/// `0::/path` of `/proc/self/cgroup`.
pub(crate) fn parse_own_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_string())
}

/// `(root, mount point)` of every cgroup2 mount in a mountinfo text.
pub(crate) fn parse_cgroup2_mounts(text: &str) -> Vec<(String, PathBuf)> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let fields: Vec<&str> = left.split_whitespace().collect();
            let root = unescape_mountinfo(fields.get(3)?);
            let mount = unescape_mountinfo(fields.get(4)?);
            Some((root, PathBuf::from(mount)))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where cgroup `own` is, on a cgroup2 mount of `root` at `mount` (a mount
/// of a subtree, as in containers, shows only cgroups below its root).
pub(crate) fn cgroup_dir(mount: &Path, root: &str, own: &str) -> Option<PathBuf> {
    let rel = if root == "/" {
        own
    } else {
        let rest = own.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    let rel = rel.trim_start_matches('/');
    if Path::new(rel)
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    Some(mount.join(rel))
}

/// Whether stage cgroups can be made here and programs moved into them
/// (moving needs write access to the common ancestor's `cgroup.procs`).
fn probe_cgroup(parent: &Path) -> Result<(), String> {
    let probe = parent.join(format!("sluice-{}-probe", std::process::id()));
    std::fs::create_dir(&probe)
        .map_err(|e| format!("cannot create a cgroup in {}: {e}", parent.display()))?;
    let removed = std::fs::remove_dir(&probe);
    let procs = parent.join("cgroup.procs");
    File::options()
        .write(true)
        .open(&procs)
        .map_err(|e| format!("cannot write {}: {e}", procs.display()))?;
    removed.map_err(|e| format!("cannot remove {}: {e}", probe.display()))
}

/// A runner killed with SIGKILL cannot end its sets. The next runner in
/// the same cgroup removes the empty ones and names those with processes
/// still in them (it does not kill them: in an unusual setup, such as pid
/// namespaces sharing a cgroup, "the runner is gone" may be wrong).
fn clean_stale_cgroups(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("sluice-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        let left = cgroup_pids(&dir).len();
        if left == 0 {
            let _ = remove_cgroup(&dir);
        } else {
            tracing::warn!(
                cgroup = %dir.display(),
                processes = left,
                "a runner that is gone (pid {pid}) left stage processes running; `echo 1 > {}/cgroup.kill` ends them",
                dir.display()
            );
        }
    }
}

static SUBREAPER: OnceLock<bool> = OnceLock::new();

/// Orphans of stage programs are re-parented to the runner, not init, so a
/// sweep finds them.
fn become_subreaper() -> bool {
    *SUBREAPER.get_or_init(|| match set_child_subreaper() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot become a child subreaper; orphans of stage programs may escape the sweep");
            false
        }
    })
}

/// The kill grace: `SLUICE_KILL_GRACE` or [`DEFAULT_GRACE`].
pub fn kill_grace() -> Duration {
    static GRACE: OnceLock<Duration> = OnceLock::new();
    *GRACE.get_or_init(|| match std::env::var("SLUICE_KILL_GRACE") {
        Ok(v) => parse_grace(&v).unwrap_or_else(|e| {
            tracing::warn!(value = %v, error = %e, "SLUICE_KILL_GRACE is not a duration such as `5s`; using 3s");
            DEFAULT_GRACE
        }),
        Err(_) => DEFAULT_GRACE,
    })
}

fn parse_grace(v: &str) -> Result<Duration, sluice_types::DurationError> {
    v.parse::<sluice_types::Duration>()
        .map(sluice_types::Duration::get)
}

/// Sets that may still hold processes, for [`stop_all`].
struct Registry {
    /// SIGINT/SIGTERM arrived: no new set, no new program.
    stopping: bool,
    /// A second signal: skip every remaining grace.
    kill_now: bool,
    sets: Vec<Arc<ProcSet>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| {
    Mutex::new(Registry {
        stopping: false,
        kill_now: false,
        sets: Vec::new(),
    })
});

/// Fallback attribution: pid (a program, or a process a sweep saw) -> set.
static OWNERS: LazyLock<Mutex<HashMap<i32, u64>>> = LazyLock::new(Default::default);

/// Pids of programs spawned through tokio: never reaped here (tokio waits
/// for them, and stealing the status would confuse it).
static SPAWNED: LazyLock<Mutex<HashSet<i32>>> = LazyLock::new(Default::default);

static NEXT_SET: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent across a panic in another holder.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn registry() -> MutexGuard<'static, Registry> {
    lock(&REGISTRY)
}

fn kill_now_requested() -> bool {
    registry().kill_now
}

/// End every live set: SIGTERM to all at once, `grace`, SIGKILL; then
/// wait until each is empty and removed. No set or program starts after
/// this is called. Blocking.
pub fn stop_all(grace: Duration) {
    let sets = {
        let mut r = registry();
        r.stopping = true;
        r.sets.clone()
    };
    for set in &sets {
        set.close();
        set.term_once();
    }
    for set in sets {
        set.end(grace);
    }
}

/// SIGKILL every live set now and wait (bounded) until they are empty.
/// Blocking.
pub fn kill_all_now() {
    let sets = {
        let mut r = registry();
        r.stopping = true;
        r.kill_now = true;
        r.sets.clone()
    };
    for set in &sets {
        set.close();
        set.kill_once();
    }
    for set in sets {
        set.end(Duration::ZERO);
    }
}

/// Where a set's processes are held.
enum Kind {
    Cgroup {
        dir: PathBuf,
        /// Open before any program starts; programs write "0" to it
        /// between fork and exec.
        procs: File,
    },
    Fallback,
}

struct SetState {
    kind: Kind,
    /// No program may join (the set is ending).
    closed: bool,
    /// When SIGTERM was sent to the whole set (SIGKILL follows after the
    /// grace).
    term_sent: Option<Instant>,
    /// Programs spawned, which lead their own process groups (kept after
    /// they exit: their groups may live on).
    leaders: Vec<i32>,
    /// The cgroup is removed and the set unregistered.
    removed: bool,
    /// Programs started through `spawn_program` whose [`Running`] token is
    /// alive: leftovers are not stopped while any is.
    running: HashSet<i32>,
    /// How many times the runner signalled the whole set: a program that
    /// died of a signal meanwhile was killed by the runner.
    signalled: u64,
}

/// One stage attempt's processes.
struct ProcSet {
    id: u64,
    log: StageLog,
    state: Mutex<SetState>,
    /// Held while leftovers are stopped, and by `spawn_program` while it
    /// starts a program: a leftover stop never catches a new program.
    leftover_stop: Arc<tokio::sync::Mutex<()>>,
}

impl ProcSet {
    fn new(log: StageLog, containment: &Containment) -> Result<Arc<ProcSet>, ProcsError> {
        let id = NEXT_SET.fetch_add(1, Ordering::Relaxed);
        let kind = match containment {
            Containment::Cgroup(parent) => {
                let dir = parent.join(format!("sluice-{}-{id}", std::process::id()));
                match make_cgroup(&dir) {
                    Ok(procs) => {
                        log.note(&format!(
                            "exec: programs of this stage run in cgroup {}",
                            dir.display()
                        ));
                        Kind::Cgroup { dir, procs }
                    }
                    Err(e) => {
                        // Still contained, by the weaker means.
                        become_subreaper();
                        log.note(&format!(
                            "exec: cannot create cgroup {} ({e}); programs of this stage are contained by the process tree",
                            dir.display()
                        ));
                        Kind::Fallback
                    }
                }
            }
            Containment::Fallback(_) => {
                become_subreaper();
                Kind::Fallback
            }
        };
        let set = Arc::new(ProcSet {
            id,
            log,
            state: Mutex::new(SetState {
                kind,
                closed: false,
                term_sent: None,
                leaders: Vec::new(),
                removed: false,
                running: HashSet::new(),
                signalled: 0,
            }),
            leftover_stop: Arc::new(tokio::sync::Mutex::new(())),
        });
        let mut r = registry();
        if r.stopping {
            drop(r);
            set.close();
            set.end(Duration::ZERO);
            return Err(ProcsError::Stopping);
        }
        r.sets.push(set.clone());
        Ok(set)
    }

    fn state(&self) -> MutexGuard<'_, SetState> {
        lock(&self.state)
    }

    fn label(&self) -> &'static str {
        match self.state().kind {
            Kind::Cgroup { .. } => "cgroup",
            Kind::Fallback => "process tree",
        }
    }

    /// Start `cmd` inside the set. The lock is held across the spawn so
    /// that an ending set never misses a program that is just starting.
    fn spawn(
        &self,
        cmd: &mut tokio::process::Command,
    ) -> Result<tokio::process::Child, ProcsError> {
        let mut st = self.state();
        if st.closed || registry().stopping {
            return Err(ProcsError::Stopping);
        }
        if let Kind::Cgroup { procs, .. } = &st.kind {
            join_cgroup_before_exec(cmd, procs);
        }
        let child = cmd.spawn().map_err(ProcsError::Spawn)?;
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            st.leaders.push(pid);
            lock(&SPAWNED).insert(pid);
            lock(&OWNERS).insert(pid, self.id);
        }
        Ok(child)
    }

    /// Live (not zombie) processes of the set.
    fn members(&self) -> Vec<i32> {
        let st = self.state();
        self.members_locked(&st)
    }

    fn members_locked(&self, st: &SetState) -> Vec<i32> {
        match &st.kind {
            Kind::Cgroup { dir, .. } => cgroup_pids(dir),
            Kind::Fallback => {
                let found = fallback_members(self.id, &st.leaders);
                // Remember them: after their parent dies they are still ours.
                let mut owners = lock(&OWNERS);
                for pid in &found {
                    owners.entry(*pid).or_insert(self.id);
                }
                found
            }
        }
    }

    fn close(&self) {
        self.state().closed = true;
    }

    /// SIGTERM to every member, once per set; returns how many got it.
    fn term_once(&self) -> usize {
        let mut st = self.state();
        if st.term_sent.is_some() {
            return 0;
        }
        st.term_sent = Some(Instant::now());
        st.signalled += 1;
        let members = self.members_locked(&st);
        members
            .iter()
            .filter(|&&p| send_signal(p, Signal::Term))
            .count()
    }

    /// SIGKILL to every member (cgroup.kill when the kernel has it).
    fn kill_once(&self) {
        let mut st = self.state();
        st.signalled += 1;
        match &st.kind {
            Kind::Cgroup { dir, .. } => kill_cgroup(dir),
            Kind::Fallback => {
                for pid in self.members_locked(&st) {
                    send_signal(pid, Signal::Kill);
                }
            }
        }
    }

    /// Stop every member: SIGTERM (unless sent already), wait until they
    /// are gone or `grace` after the SIGTERM passed, then SIGKILL until
    /// the set is empty. Returns the pids stopped. Blocking.
    fn stop(&self, grace: Duration) -> HashSet<i32> {
        let stopped = self.stop_members(grace);
        let mut st = self.state();
        if !st.closed {
            // The stage goes on: its next stop gets a SIGTERM of its own.
            st.term_sent = None;
        }
        stopped
    }

    fn stop_members(&self, grace: Duration) -> HashSet<i32> {
        let mut stopped: HashSet<i32> = HashSet::new();
        let first = self.members();
        if first.is_empty() {
            return stopped;
        }
        stopped.extend(&first);
        let term_at = {
            let mut st = self.state();
            match st.term_sent {
                Some(at) => at,
                None => {
                    st.term_sent = Some(Instant::now());
                    st.signalled += 1;
                    for pid in &first {
                        send_signal(*pid, Signal::Term);
                    }
                    Instant::now()
                }
            }
        };
        loop {
            let now = self.members();
            stopped.extend(&now);
            if now.is_empty() {
                self.reap_orphans();
                return stopped;
            }
            if kill_now_requested() || term_at.elapsed() >= grace {
                break;
            }
            std::thread::sleep(POLL);
        }
        let deadline = Instant::now() + KILL_BOUND;
        loop {
            self.kill_once();
            std::thread::sleep(POLL / 4);
            let now = self.members();
            stopped.extend(&now);
            if now.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    set = self.id,
                    left = now.len(),
                    "processes of a stage survived SIGKILL for 10s"
                );
                self.log.note(&format!(
                    "could not stop {} process{} of the stage within {}s of SIGKILL: {now:?}",
                    now.len(),
                    plural(now.len()),
                    KILL_BOUND.as_secs()
                ));
                break;
            }
        }
        self.reap_orphans();
        stopped
    }

    /// The set is over: stop everything, remove the cgroup, unregister.
    /// Safe to call from several threads (only the first notes the log).
    /// Blocking.
    fn end(&self, grace: Duration) {
        self.close();
        let stopped = self.stop(grace);
        if self.remove() && !stopped.is_empty() {
            self.log.note(&format!(
                "stopped {} process{} of the stage ({})",
                stopped.len(),
                plural(stopped.len()),
                self.label()
            ));
            tracing::info!(
                set = self.id,
                processes = stopped.len(),
                "stopped the processes of a stage"
            );
        }
    }

    /// Remove the cgroup and unregister; false when already done.
    fn remove(&self) -> bool {
        let mut st = self.state();
        if st.removed {
            return false;
        }
        st.removed = true;
        if let Kind::Cgroup { dir, .. } = &st.kind {
            if let Err(e) = remove_cgroup(dir) {
                tracing::warn!(cgroup = %dir.display(), error = %e, "cannot remove a stage cgroup");
            }
        }
        drop(st);
        lock(&OWNERS).retain(|_, set| *set != self.id);
        registry().sets.retain(|s| s.id != self.id);
        true
    }

    /// Orphans re-parented to the runner (fallback) are its children:
    /// collect their exit status so they do not linger as zombies.
    fn reap_orphans(&self) {
        if !matches!(self.state().kind, Kind::Fallback) {
            return;
        }
        let me = own_pid();
        let spawned = lock(&SPAWNED).clone();
        let procs = scan_proc();
        // Children in the runner's own process group were started by the
        // runner itself, not adopted: whoever started them waits for them.
        let my_group = procs.iter().find(|p| p.pid == me).map(|p| p.pgrp);
        for p in procs {
            if p.ppid == me && p.zombie && !spawned.contains(&p.pid) && Some(p.pgrp) != my_group {
                reap(p.pid);
            }
        }
    }
}

/// The per-stage guard (in the store data): ends the stage's processes
/// when dropped, however the stage ends.
pub struct StageProcs {
    log: StageLog,
    containment: Option<Containment>,
    set: Option<Arc<ProcSet>>,
}

impl std::fmt::Debug for StageProcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageProcs")
            .field("set", &self.set.as_ref().map(|s| s.id))
            .finish_non_exhaustive()
    }
}

impl StageProcs {
    /// A guard for one stage attempt; nothing is created until the first
    /// program starts.
    pub fn new(log: StageLog) -> StageProcs {
        StageProcs {
            log,
            containment: None,
            set: None,
        }
    }

    /// The same, with a fixed containment (tests).
    #[cfg(test)]
    fn with_containment(log: StageLog, containment: Containment) -> StageProcs {
        StageProcs {
            log,
            containment: Some(containment),
            set: None,
        }
    }

    /// The attempt's process set, created on first use.
    pub(crate) fn handle(&mut self) -> Result<ProcHandle, ProcsError> {
        if let Some(set) = &self.set {
            return Ok(ProcHandle(set.clone()));
        }
        let containment = match &self.containment {
            Some(c) => c.clone(),
            None => init().clone(),
        };
        let set = ProcSet::new(self.log.clone(), &containment)?;
        self.set = Some(set.clone());
        Ok(ProcHandle(set))
    }
}

impl Drop for StageProcs {
    fn drop(&mut self) {
        let Some(set) = self.set.take() else {
            return;
        };
        set.close();
        let running = set.members().len();
        if running == 0 {
            set.remove();
            return;
        }
        // Still running: the stage timed out or was cancelled mid-`exec`.
        // Drop cannot wait, so the grace runs on a thread of its own; the
        // runner waits for it before exiting (`stop_all`).
        let grace = sluice_types::Duration(kill_grace());
        let what = if set.term_once() > 0 {
            format!("SIGTERM, then SIGKILL after {grace}")
        } else {
            // The `exec` call's own timeout sent SIGTERM already.
            format!("SIGKILL {grace} after their SIGTERM")
        };
        set.log.note(&format!(
            "the stage ended with {running} process{} still running: {what} ({})",
            plural(running),
            set.label()
        ));
        let grace = kill_grace();
        let worker = set.clone();
        let spawned = std::thread::Builder::new()
            .name("sluice-reaper".into())
            .spawn(move || worker.end(grace));
        if spawned.is_err() {
            set.end(Duration::ZERO);
        }
    }
}

/// A stage's process set, as `exec` uses it.
#[derive(Clone)]
pub(crate) struct ProcHandle(Arc<ProcSet>);

impl ProcHandle {
    /// Start `cmd` in the set (it joins before it execs), not counted as
    /// running (tests of the set itself; programs use `spawn_program`).
    #[cfg(test)]
    pub(crate) fn spawn(
        &self,
        cmd: &mut tokio::process::Command,
    ) -> Result<tokio::process::Child, ProcsError> {
        self.0.spawn(cmd)
    }

    /// Start `cmd` in the set as a running program (see the module doc):
    /// waits while leftovers are being stopped, and leftovers are not
    /// stopped while the returned token is alive. Drop the token once the
    /// program's exit status is collected (or the program is abandoned).
    pub(crate) async fn spawn_program(
        &self,
        cmd: &mut tokio::process::Command,
    ) -> Result<(tokio::process::Child, Running), ProcsError> {
        let _no_leftover_stop = self.0.leftover_stop.lock().await;
        let child = self.0.spawn(cmd)?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        self.0.state().running.insert(pid);
        Ok((
            child,
            Running {
                set: self.0.clone(),
                pid,
            },
        ))
    }

    /// Whether programs other than `pid` are running in the set.
    pub(crate) fn others_running(&self, pid: Option<u32>) -> bool {
        let pid = pid.and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        self.0.state().running.iter().any(|p| *p != pid)
    }

    /// How many times the runner has signalled the whole set so far (a
    /// program that died of a signal while this changed was killed by
    /// the runner, not by someone else).
    pub(crate) fn signalled(&self) -> u64 {
        self.0.state().signalled
    }

    /// Stop one program's process group: SIGTERM, then SIGKILL once
    /// `grace` has passed with members left. Returns whether the group
    /// still existed. Finishes even if the caller goes away.
    pub(crate) async fn stop_program(&self, pid: Option<u32>, grace: Duration) -> bool {
        let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()) else {
            return false;
        };
        let set = self.0.clone();
        run_blocking(move || {
            let found = stop_group(pgid, grace);
            set.reap_orphans();
            found
        })
        .await
    }

    /// tokio collected the exit status of program `pid`: from now on that
    /// pid may be an adopted orphan to reap (fallback).
    pub(crate) fn reaped(&self, pid: Option<u32>) {
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            lock(&SPAWNED).remove(&pid);
        }
    }

    /// After a program exited: stop what the stage's programs left
    /// running, at once, unless another program is still running (then
    /// the last one to exit does it). Returns how many processes were
    /// stopped.
    pub(crate) async fn stop_leftovers(&self) -> usize {
        let no_spawn = self.0.leftover_stop.clone().lock_owned().await;
        if !self.0.state().running.is_empty() {
            return 0;
        }
        let set = self.0.clone();
        let stopped = run_blocking(move || {
            let _no_spawn = no_spawn;
            set.stop(LEFTOVER_GRACE).len()
        })
        .await;
        if stopped > 0 {
            self.0.log.note(&format!(
                "stopped {stopped} leftover process{} of the stage ({})",
                plural(stopped),
                self.0.label()
            ));
        }
        stopped
    }

    /// After a timeout: SIGTERM, the kill grace, SIGKILL. The set stays
    /// open for later programs. Finishes even if the caller goes away.
    pub(crate) async fn stop_gracefully(&self) -> usize {
        let grace = kill_grace();
        let running = self.0.members().len();
        if running == 0 {
            return 0;
        }
        self.0.log.note(&format!(
            "stopping {running} process{} of the stage: SIGTERM, then SIGKILL after {} ({})",
            plural(running),
            sluice_types::Duration(grace),
            self.0.label()
        ));
        let set = self.0.clone();
        let stopped = run_blocking(move || set.stop(grace).len()).await;
        self.0.log.note(&format!(
            "stopped {stopped} process{} of the stage",
            plural(stopped)
        ));
        stopped
    }
}

/// A program counted as running in its set (see
/// [`ProcHandle::spawn_program`]); dropping it ends the count.
pub(crate) struct Running {
    set: Arc<ProcSet>,
    pid: i32,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set.state().running.remove(&self.pid);
    }
}

/// SIGTERM to process group `pgid`, wait until no live process is left in
/// it or `grace` passed, then SIGKILL until it is empty (bounded).
/// Returns false when the group had no process to signal. Blocking.
fn stop_group(pgid: i32, grace: Duration) -> bool {
    if !signal_group(pgid, Signal::Term) {
        return false;
    }
    let term_at = Instant::now();
    // Zombies count as members for kill(2) but are already gone.
    let live = || {
        scan_proc()
            .iter()
            .any(|p| p.pgrp == pgid && !p.zombie && p.pid != own_pid())
    };
    while live() {
        if kill_now_requested() || term_at.elapsed() >= grace {
            let bound = Instant::now() + KILL_BOUND;
            while live() && Instant::now() < bound {
                signal_group(pgid, Signal::Kill);
                std::thread::sleep(POLL / 4);
            }
            break;
        }
        std::thread::sleep(POLL);
    }
    true
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "es"
    }
}

/// Waits run on a blocking thread: it goes on even if the awaiting future
/// is dropped, so a stop once started always finishes.
async fn run_blocking<T>(f: impl FnOnce() -> T + Send + 'static) -> T
where
    T: Default + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "stopping stage processes failed");
            T::default()
        }
    }
}

// --- cgroup v2 ---------------------------------------------------------

fn make_cgroup(dir: &Path) -> io::Result<File> {
    std::fs::create_dir(dir)?;
    match File::options().write(true).open(dir.join("cgroup.procs")) {
        Ok(f) => Ok(f),
        Err(e) => {
            let _ = std::fs::remove_dir(dir);
            Err(e)
        }
    }
}

/// Pids in a cgroup and the cgroups below it (a program allowed to write
/// cgroup files may make sub-cgroups; they end with the set too).
fn cgroup_pids(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for sub in sub_cgroups(dir) {
        pids.extend(cgroup_pids(&sub));
    }
    pids
}

fn sub_cgroups(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// SIGKILL everything in the cgroup: `cgroup.kill` (atomic, also against
/// processes forking meanwhile), else each pid.
fn kill_cgroup(dir: &Path) {
    let killed = File::options()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"));
    if killed.is_err() {
        for pid in cgroup_pids(dir) {
            send_signal(pid, Signal::Kill);
        }
    }
}

/// Remove a cgroup and those below it (deepest first). An emptied cgroup
/// can stay busy for a moment while the kernel finishes the exits.
fn remove_cgroup(dir: &Path) -> io::Result<()> {
    for sub in sub_cgroups(dir) {
        remove_cgroup(&sub)?;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

// --- fallback: the process tree ------------------------------------------

#[derive(Debug, Clone, Copy)]
struct ProcInfo {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    zombie: bool,
}

/// Fields of `/proc/<pid>/stat` after the command name (which may hold
/// spaces and parentheses, hence the last `)`).
fn parse_stat(pid: i32, text: &str) -> Option<ProcInfo> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgrp,
        zombie: state == "Z" || state == "X",
    })
}

fn scan_proc() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read_to_string(e.path().join("stat")).ok()?;
            parse_stat(pid, &text)
        })
        .collect()
}

fn own_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}

/// The set's live processes in the fallback: every descendant of the
/// runner that hangs below a child of the runner owned by the set. A
/// child of the runner is owned by the set when it is one of its programs,
/// is in one of their process groups, was seen in the set, or is an
/// orphan no set claims.
fn fallback_members(set: u64, leaders: &[i32]) -> Vec<i32> {
    members_in(
        &scan_proc(),
        own_pid(),
        set,
        leaders,
        &lock(&OWNERS).clone(),
    )
}

fn members_in(
    procs: &[ProcInfo],
    me: i32,
    set: u64,
    leaders: &[i32],
    owners: &HashMap<i32, u64>,
) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<&ProcInfo>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    // The runner's own process group: every program of a set leads a group
    // of its own and its orphans keep that group (or `setsid` into a new
    // one), so a child of the runner still in the runner's group was
    // started by the runner itself for something else (a test harness's
    // own `Command`, say), never by a stage: it is no orphan of any set.
    let my_group = procs.iter().find(|p| p.pid == me).map(|p| p.pgrp);
    // The pid itself decides first: a program's pid may be the number of
    // an old, emptied process group of another set.
    let owned = |p: &ProcInfo| {
        if let Some(owner) = owners.get(&p.pid) {
            return *owner == set;
        }
        if Some(p.pgrp) == my_group {
            return false;
        }
        if leaders.contains(&p.pgrp) {
            return true;
        }
        owners.get(&p.pgrp).is_none_or(|owner| *owner == set)
    };
    let mut found = Vec::new();
    let mut stack: Vec<&ProcInfo> = children
        .get(&me)
        .map(|c| c.iter().copied().filter(|p| owned(p)).collect())
        .unwrap_or_default();
    let mut visited: HashSet<i32> = HashSet::new();
    while let Some(p) = stack.pop() {
        if p.pid == me || !visited.insert(p.pid) {
            continue;
        }
        if !p.zombie {
            found.push(p.pid);
        }
        if let Some(c) = children.get(&p.pid) {
            stack.extend(c.iter().copied());
        }
    }
    found
}

// --- system calls ----------------------------------------------------------

#[derive(Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

/// Signal one process. Never pid 0, 1, negative (process groups, all
/// processes) or the runner itself.
#[cfg(unix)]
#[allow(unsafe_code)]
fn send_signal(pid: i32, sig: Signal) -> bool {
    if pid <= 1 || pid == own_pid() {
        return false;
    }
    let sig = match sig {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) with a positive pid only sends a signal; a pid that
    // is gone gives ESRCH.
    unsafe { libc::kill(pid, sig) == 0 }
}

#[cfg(not(unix))]
fn send_signal(_pid: i32, _sig: Signal) -> bool {
    false
}

/// Signal every process in process group `pgid`. Never groups 0 or 1 or
/// the runner's own group.
#[cfg(unix)]
#[allow(unsafe_code)]
fn signal_group(pgid: i32, sig: Signal) -> bool {
    // SAFETY: getpgrp(2) only reads the caller's process group.
    let own_group = unsafe { libc::getpgrp() };
    if pgid <= 1 || pgid == own_group {
        return false;
    }
    let sig = match sig {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) with a negative pid signals that process group; a
    // group that is gone gives ESRCH.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

#[cfg(not(unix))]
fn signal_group(_pgid: i32, _sig: Signal) -> bool {
    false
}

/// Collect an adopted orphan's exit status.
#[cfg(unix)]
#[allow(unsafe_code)]
fn reap(pid: i32) {
    if pid <= 1 {
        return;
    }
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid on one positive pid with WNOHANG never blocks; the
    // caller makes sure it is no process tokio waits for.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

#[cfg(not(unix))]
fn reap(_pid: i32) {}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER only changes which process adopts
    // this process's orphaned descendants.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_child_subreaper() -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "child subreapers are Linux only",
    ))
}

/// The program moves itself into the cgroup after fork and before exec,
/// so everything it ever starts is inside from the first instruction.
#[cfg(unix)]
#[allow(unsafe_code)]
fn join_cgroup_before_exec(cmd: &mut tokio::process::Command, procs: &File) {
    use std::os::fd::AsRawFd;
    let fd = procs.as_raw_fd();
    // SAFETY: pre_exec: the closure runs in the forked child, where only
    // async-signal-safe calls are allowed; it calls write(2) (one byte
    // from a static buffer) and builds an io::Error from errno, neither of
    // which allocates or takes a lock. `fd` is open at fork time (the set
    // holds the File, and its lock is held across the spawn) and is
    // close-on-exec, so the program never sees it.
    unsafe {
        cmd.pre_exec(move || {
            if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

#[cfg(not(unix))]
fn join_cgroup_before_exec(_cmd: &mut tokio::process::Command, _procs: &File) {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Stdio;

    /// Tests that start processes run one at a time: a fallback sweep
    /// claims every unclaimed orphan of the test process.
    pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    pub(crate) async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
        SERIAL.lock().await
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|t| parse_stat(pid, &t))
            .map(|p| !p.zombie)
            .unwrap_or(false)
    }

    /// Pids of live processes whose command line contains `token`.
    pub(crate) fn with_token(token: &str) -> Vec<i32> {
        scan_proc()
            .into_iter()
            .filter(|p| !p.zombie && p.pid != own_pid())
            .filter(|p| {
                std::fs::read(format!("/proc/{}/cmdline", p.pid))
                    .map(|c| String::from_utf8_lossy(&c).contains(token))
                    .unwrap_or(false)
            })
            .map(|p| p.pid)
            .collect()
    }

    fn wait_for(mut f: impl FnMut() -> bool, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f()
    }

    fn sh(script: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        cmd
    }

    fn log() -> StageLog {
        StageLog::discarding().expect("null log")
    }

    #[test]
    fn parses_mountinfo_and_own_cgroup() {
        let mountinfo = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
             40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n\
             42 31 0:39 /sub /mnt/cg\\040x rw - cgroup2 cgroup2 rw\n";
        let mounts = parse_cgroup2_mounts(mountinfo);
        assert_eq!(
            mounts,
            vec![
                ("/".to_string(), PathBuf::from("/sys/fs/cgroup/unified")),
                ("/sub".to_string(), PathBuf::from("/mnt/cg x")),
            ]
        );
        assert_eq!(
            parse_own_cgroup("9:name=systemd:/\n0::/user.slice/a.scope\n").as_deref(),
            Some("/user.slice/a.scope")
        );
        assert_eq!(parse_own_cgroup("4:memory:/x\n"), None);
        let unified = Path::new("/sys/fs/cgroup/unified");
        assert_eq!(cgroup_dir(unified, "/", "/"), Some(unified.to_path_buf()));
        assert_eq!(cgroup_dir(unified, "/", "/a/b"), Some(unified.join("a/b")));
        assert_eq!(
            cgroup_dir(Path::new("/m"), "/sub", "/sub/c"),
            Some(PathBuf::from("/m/c"))
        );
        assert_eq!(cgroup_dir(Path::new("/m"), "/sub", "/subway"), None);
        assert_eq!(cgroup_dir(Path::new("/m"), "/sub", "/other"), None);
        assert_eq!(cgroup_dir(unified, "/", "/a/../../etc"), None);
    }

    #[test]
    fn parses_stat_with_odd_command_names() {
        let p = parse_stat(42, "42 (a (b) c) S 7 42 42 0 -1").expect("parses");
        assert_eq!((p.pid, p.ppid, p.pgrp, p.zombie), (42, 7, 42, false));
        let z = parse_stat(43, "43 (x) Z 1 43 43").expect("parses");
        assert!(z.zombie);
        assert!(parse_stat(1, "garbage").is_none());
    }

    #[test]
    fn grace_reads_like_a_pipeline_duration() {
        assert_eq!(parse_grace("5s").ok(), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_grace(" 250ms ").ok(),
            Some(Duration::from_millis(250))
        );
        assert!(parse_grace("five").is_err());
        // Issue 16: humantime panicked on this instead of refusing it.
        assert!(parse_grace("18446744073709551615s 500ms 500ms").is_err());
        assert!(parse_grace("3").is_err());
    }

    #[test]
    fn fallback_attribution_follows_the_tree() {
        let me = 100;
        let p = |pid, ppid, pgrp| ProcInfo {
            pid,
            ppid,
            pgrp,
            zombie: false,
        };
        let procs = vec![
            p(100, 1, 100),
            p(200, 100, 200), // program of set 1
            p(201, 200, 200), // its child
            p(300, 100, 300), // program of set 2
            p(301, 300, 300),
            p(210, 100, 200), // orphan still in set 1's group
            p(220, 100, 220), // setsid orphan seen in set 1 before
            p(221, 220, 220),
            p(400, 100, 400), // setsid orphan nobody saw
            p(500, 1, 500),   // not the runner's
            ProcInfo {
                pid: 202,
                ppid: 200,
                pgrp: 200,
                zombie: true,
            },
        ];
        let mut owners = HashMap::new();
        owners.insert(200, 1);
        owners.insert(300, 2);
        owners.insert(220, 1);
        let mut one = members_in(&procs, me, 1, &[200], &owners);
        one.sort_unstable();
        assert_eq!(one, vec![200, 201, 210, 220, 221, 400]);
        let mut two = members_in(&procs, me, 2, &[300], &owners);
        two.sort_unstable();
        assert_eq!(two, vec![300, 301, 400]);
    }

    /// Start `sh` in a set; it leaves a `setsid` grandchild (which ignores
    /// SIGTERM) behind and exits. The set must stop the grandchild.
    async fn leaves_nothing_behind(containment: Containment) {
        let token = format!(
            "sluice-procs-test-{}-{}",
            std::process::id(),
            NEXT_SET.load(Ordering::Relaxed)
        );
        let mut guard = StageProcs::with_containment(log(), containment);
        let handle = guard.handle().expect("set");
        let script = format!(
            "setsid sh -c 'trap \"\" TERM; sleep 30; : {token}' </dev/null >/dev/null 2>&1 & exit 0"
        );
        let mut child = handle.spawn(&mut sh(&script)).expect("spawn");
        let status = child.wait().await.expect("wait");
        assert!(status.success());
        assert!(
            wait_for(|| !with_token(&token).is_empty(), Duration::from_secs(5)),
            "the grandchild never started"
        );
        let stopped = handle.stop_leftovers().await;
        assert!(stopped >= 1, "stopped {stopped}");
        assert!(
            wait_for(|| with_token(&token).is_empty(), Duration::from_secs(5)),
            "left running: {:?}",
            with_token(&token)
        );

        // Cancellation: the guard is dropped while a program runs.
        let script =
            format!("setsid sh -c 'trap \"\" TERM; sleep 30; : {token}' & sleep 30; : {token}");
        let child = handle.spawn(&mut sh(&script)).expect("spawn");
        assert!(
            wait_for(|| with_token(&token).len() >= 2, Duration::from_secs(5)),
            "the processes never started"
        );
        let pids = with_token(&token);
        drop(handle);
        drop(guard);
        drop(child);
        // The grandchild ignores SIGTERM: it goes at the end of the grace.
        assert!(
            wait_for(
                || pids.iter().all(|p| !alive(*p)),
                kill_grace() + Duration::from_secs(5)
            ),
            "left running: {:?}",
            with_token(&token)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cgroup_contains_setsid_grandchildren() {
        let _serial = serial().await;
        let containment = init().clone();
        let Containment::Cgroup(parent) = &containment else {
            eprintln!("note: skipped, no writable cgroup v2 ({containment:?}); the fallback test covers this machine");
            return;
        };
        let parent = parent.clone();
        leaves_nothing_behind(containment).await;
        // Every stage cgroup of this process is gone.
        let prefix = format!("sluice-{}-", std::process::id());
        let left: Vec<String> = std::fs::read_dir(&parent)
            .expect("read cgroup dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        assert!(
            wait_for(
                || std::fs::read_dir(&parent)
                    .map(|d| !d
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with(&prefix)))
                    .unwrap_or(true),
                Duration::from_secs(5)
            ),
            "cgroups left: {left:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fallback_sweep_finds_setsid_orphans() {
        let _serial = serial().await;
        if !become_subreaper() {
            eprintln!("note: skipped, cannot become a child subreaper here");
            return;
        }
        leaves_nothing_behind(Containment::Fallback("test".into())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_program_starts_once_a_set_is_closed() {
        let _serial = serial().await;
        let mut guard = StageProcs::with_containment(log(), Containment::Fallback("test".into()));
        let handle = guard.handle().expect("set");
        handle.0.close();
        let refused = handle.spawn(&mut sh("exit 0"));
        assert!(matches!(refused, Err(ProcsError::Stopping)), "{refused:?}");
    }
}
