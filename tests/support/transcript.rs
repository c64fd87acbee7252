//! Probing with a transcript recorded (`probe::transcript`), and reading its dialogue
//! back: the lines `S: ...` and `C: ...`, without their times.

use std::time::SystemTime;

use certwatch::probe::outcome::ProbeOutcome;
use certwatch::probe::transcript;

use super::Harness;

impl Harness {
    /// Probes the first target of `yaml` once while recording, and renders the
    /// transcript as `/probe?debug=true` and `check --verbose` print it.
    pub async fn transcript(&self, yaml: &str) -> (ProbeOutcome, String) {
        let config = self.config(yaml);
        let spec = config.targets.first().expect("a target").clone();
        let (outcome, recorded) = transcript::recorded(certwatch::probe::run(&spec)).await;
        let text = recorded.render(&spec, &outcome, SystemTime::now());
        (outcome, text)
    }
}

/// The dialogue of a rendered transcript: each `S:` (server) and `C:` (certwatch)
/// line, as `"S: text"`, in order.
pub fn dialogue(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start();
            let (_, said) = rest.split_once(' ')?;
            (said.starts_with("S: ") || said.starts_with("C: ")).then(|| said.to_owned())
        })
        .collect()
}

/// The transcript line that starts with `prefix` once its time is removed (`tls: `,
/// `  verdict: `...), for one-address transcripts.
pub fn line_after_time<'a>(transcript: &'a str, prefix: &str) -> Option<&'a str> {
    transcript.lines().find_map(|line| {
        let (_, said) = line.trim_start().split_once(' ')?;
        said.starts_with(prefix).then_some(said)
    })
}
