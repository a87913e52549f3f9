//! End-to-end tests: the real `sluice` binary on real plugins, asserting on
//! what a user sees (exit code, stage state, reason text, logs, records).

mod approval_resume;
mod artifacts_gates;
mod cli;
mod containment;
mod delivery_analysis;
mod delivery_demo;
mod delivery_guides;
mod delivery_http;
mod delivery_incident;
mod delivery_rollback;
mod delivery_slo;
mod delivery_switch;
mod delivery_traffic;
mod events_schema;
mod examples;
mod hostile;
mod inputs;
mod integrity;
mod pipeline_errors;
mod pipes;
mod policy_features;
mod provenance;
mod reliability;
mod sandbox;
mod scheduling;
mod snapshots;
mod stage_canary;
mod stage_deploy;
mod stage_languages;
mod stage_lint;
mod stage_scan;
mod stage_smoke_monitor;
mod stage_test_build;
mod trust;
mod trust_boundary;
