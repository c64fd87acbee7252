//! Every metric name and label key certwatch exports, shared with the tests.

/// 1 if connect, STARTTLS and the TLS handshake completed.
pub const HANDSHAKE_SUCCESS: &str = "certwatch_handshake_success";
/// 1 if the presented chain verifies.
pub const CHAIN_VERIFIED: &str = "certwatch_chain_verified";
/// 1 if both of the above are 1.
pub const PROBE_SUCCESS: &str = "certwatch_probe_success";
/// 1 with `reason` when verification failed.
pub const VERIFY_ERROR_INFO: &str = "certwatch_verify_error_info";
/// 1 with `stage` and `reason` when the handshake did not complete.
pub const PROBE_FAILURE_INFO: &str = "certwatch_probe_failure_info";
/// 1 with `version` and `cipher`.
pub const TLS_INFO: &str = "certwatch_tls_info";
/// 1 per presented certificate, with its identity.
pub const CERT_INFO: &str = "certwatch_cert_info";
/// notAfter per depth.
pub const CERT_NOT_AFTER: &str = "certwatch_cert_not_after_timestamp_seconds";
/// notBefore per depth.
pub const CERT_NOT_BEFORE: &str = "certwatch_cert_not_before_timestamp_seconds";
/// Seconds until notAfter per depth, at scrape time.
pub const CERT_EXPIRY: &str = "certwatch_cert_expiry_seconds";
/// The smallest certificate expiry of the presented chain, at scrape time.
pub const CHAIN_EXPIRY: &str = "certwatch_chain_expiry_seconds";
/// The smallest expiry along the verified path, at scrape time.
pub const VERIFIED_CHAIN_EXPIRY: &str = "certwatch_verified_chain_expiry_seconds";
/// How long the last probe took.
pub const PROBE_DURATION: &str = "certwatch_probe_duration_seconds";
/// How long each phase of the last probe took.
pub const PROBE_PHASE_DURATION: &str = "certwatch_probe_phase_duration_seconds";
/// When the last probe finished.
pub const LAST_PROBE_TIMESTAMP: &str = "certwatch_last_probe_timestamp_seconds";
/// The configured probe interval (for staleness alerts).
pub const PROBE_INTERVAL: &str = "certwatch_probe_interval_seconds";
/// Probes run, by result.
pub const PROBES_TOTAL: &str = "certwatch_probes_total";
/// Version and compiler.
pub const BUILD_INFO: &str = "certwatch_build_info";
/// 1 if the last configuration (re)load succeeded.
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "certwatch_config_last_reload_successful";
/// When the configuration last loaded successfully.
pub const CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP: &str =
    "certwatch_config_last_reload_success_timestamp_seconds";
/// Configured targets.
pub const TARGETS: &str = "certwatch_targets";
/// 1 if the last web configuration (re)load succeeded.
pub const WEB_CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "certwatch_web_config_last_reload_successful";
/// Log lines dropped because stderr was full, closed or failing.
pub const LOG_MESSAGES_DROPPED: &str = "certwatch_log_messages_dropped_total";

/// The configured name of a target.
pub const LABEL_TARGET: &str = "target";
/// The address probed.
pub const LABEL_IP: &str = "ip";
/// Position of a certificate in the presented chain, 0 = leaf.
pub const LABEL_DEPTH: &str = "depth";
/// Why verification or a stage failed.
pub const LABEL_REASON: &str = "reason";
/// The stage a probe failed in.
pub const LABEL_STAGE: &str = "stage";
/// The phase a duration belongs to.
pub const LABEL_PHASE: &str = "phase";
/// `success` or `failure`.
pub const LABEL_RESULT: &str = "result";

/// Hosts the last MX or SRV answer of a discovered target named.
pub const DISCOVERED_HOSTS: &str = "certwatch_discovered_hosts";
/// Addresses a name resolved to beyond those probed.
pub const ADDRESSES_SKIPPED: &str = "certwatch_addresses_skipped";
/// The discovered host (`name:port`) of a discovered target's series.
pub const LABEL_HOST: &str = "host";

/// The `target` label of certwatch's own serving certificate; the configuration
/// reserves it.
pub use crate::config::SELF_TARGET;

/// 1 when the leaf a server presents is the leaf of its `served_from` file.
pub const SERVED_CERT_CURRENT: &str = "certwatch_served_cert_current";
/// notAfter of the leaf of a target's `served_from` file.
pub const SERVED_FILE_NOT_AFTER: &str = "certwatch_served_file_not_after_timestamp_seconds";
/// 1 if a certificate file was read and parsed whole.
pub const FILE_READ_SUCCESS: &str = "certwatch_file_read_success";
/// 1, with `reason`, when a certificate file was not read whole.
pub const FILE_READ_ERROR_INFO: &str = "certwatch_file_read_error_info";
/// Files a `files:` source found.
pub const FILES_MATCHED: &str = "certwatch_files_matched";
/// Files a `files:` source found but did not read, over its bound.
pub const FILES_SKIPPED: &str = "certwatch_files_skipped";

/// A certificate file, as its glob matched it.
pub const LABEL_PATH: &str = "path";
/// A kubeconfig entry: `users/NAME` or `clusters/NAME`.
pub const LABEL_ENTRY: &str = "entry";

/// 1 if only the legacy second hello reached the server.
pub const LEGACY_ONLY: &str = "certwatch_legacy_only";
/// 1 per issue of the presented chain, with `issue`.
pub const CHAIN_ISSUE_INFO: &str = "certwatch_chain_issue_info";
/// 1 per weakness of a presented certificate, with `depth` and `weakness`.
pub const CERT_WEAKNESS_INFO: &str = "certwatch_cert_weakness_info";
/// 1 if the certificate at `depth` is on the verified path, 0 if not.
pub const CERT_ON_VERIFIED_PATH: &str = "certwatch_cert_on_verified_path";

/// A chain issue.
pub const LABEL_ISSUE: &str = "issue";
/// A certificate weakness.
pub const LABEL_WEAKNESS: &str = "weakness";

/// 1 revoked, 0 known not revoked, per depth and source; absent when unknown.
pub const CERT_REVOKED: &str = "certwatch_cert_revoked";
/// 1 when the handshake carried a stapled OCSP response, 0 when not.
pub const OCSP_STAPLED: &str = "certwatch_ocsp_stapled";
/// The `nextUpdate` of the OCSP response used, per depth and source.
pub const OCSP_NEXT_UPDATE: &str = "certwatch_ocsp_next_update_timestamp_seconds";
/// The `nextUpdate` of the CRL used, per depth.
pub const CRL_NEXT_UPDATE: &str = "certwatch_crl_next_update_timestamp_seconds";
/// 1 when the certificate asks for a stapled OCSP response (must-staple).
pub const CERT_MUST_STAPLE: &str = "certwatch_cert_must_staple";
/// 1 with `depth`, `source` and `reason` when a revocation source gave no answer.
pub const REVOCATION_CHECK_FAILURE_INFO: &str = "certwatch_revocation_check_failure_info";
/// Where a revocation answer came from: `ocsp_stapled`, `ocsp` or `crl`.
pub const LABEL_SOURCE: &str = "source";
/// 1, with this process's share of the configuration (`--shard INDEX/COUNT`).
pub const SHARD_INFO: &str = "certwatch_shard_info";
/// How late scheduled probes started after their slot.
pub const PROBE_START_DELAY: &str = "certwatch_probe_start_delay_seconds";
