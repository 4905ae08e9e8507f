//! Reading numbers from outside the operator: /proc (memory, CPU time), Prometheus text (the
//! apiserver's and the operator's /metrics), the machine.

use std::collections::BTreeMap;

/// Peak resident set (VmHWM) of a process, MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_kib(&status, "VmHWM:").map(|kib| kib as f64 / 1024.0)
}

/// A `Name:   123 kB` field of /proc/PID/status, in KiB.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// User + system CPU time of a process, seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_ticks(&stat).map(|t| t as f64 / clock_ticks() as f64)
}

/// utime + stime (clock ticks) from a /proc/PID/stat line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after the last `)`.
pub fn stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ")": state(3) ppid(4) ... utime(14) stime(15) → indexes 11 and 12 here
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The machine: CPUs and memory.
pub fn machine() -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    m.insert(
        "nproc".into(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
            .into(),
    );
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        if let Some(kib) = status_kib(&meminfo, "MemTotal:") {
            m.insert("mem_total_mib".into(), (kib / 1024).into());
        }
    }
    if let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") {
        if let Some(model) = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|r| r.split_once(':'))
        {
            m.insert("cpu_model".into(), model.1.trim().into());
        }
    }
    m
}

/// One sample of a Prometheus text exposition: labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label name → value.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// The samples of metric `name` (exactly that name, e.g. `apiserver_request_total`).
pub fn samples(text: &str, name: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = if let Some(inner) = rest.strip_prefix('{') {
                let end = inner.rfind('}')?;
                (parse_labels(&inner[..end]), &inner[end + 1..])
            } else if rest.starts_with(' ') {
                (BTreeMap::new(), rest)
            } else {
                return None; // a longer metric name with this prefix
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some(Sample { labels, value })
        })
        .collect()
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((k, v)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut end = v.len();
        let mut chars = v.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(k.trim_start_matches(',').trim().to_owned(), value);
        rest = &v[end..];
    }
    out
}

/// Sum of the samples of `name` whose labels include every `(label, value)` of `filter`.
pub fn sum(text: &str, name: &str, filter: &[(&str, &str)]) -> f64 {
    samples(text, name)
        .into_iter()
        .filter(|s| {
            filter
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// `apiserver_request_total` summed by `VERB resource[/subresource]`.
pub fn requests_by_verb(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in samples(text, "apiserver_request_total") {
        let get = |k: &str| s.labels.get(k).map(String::as_str).unwrap_or("");
        let resource = match (get("resource"), get("subresource")) {
            ("", _) => "(non-resource)".to_owned(),
            (r, "") => r.to_owned(),
            (r, sub) => format!("{r}/{sub}"),
        };
        *out.entry(format!("{} {resource}", get("verb")))
            .or_insert(0) += s.value as u64;
    }
    out
}

/// `after - before` per key, keeping only keys that grew.
pub fn delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, &a)| {
            let d = a.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields() {
        let stat = "4242 (identity (op)) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 9 0";
        assert_eq!(stat_ticks(stat), Some(175));
        let status = "Name:\tx\nVmHWM:\t  20480 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
    }

    #[test]
    fn prometheus_text() {
        let text = r#"# HELP x y
apiserver_flowcontrol_dispatched_requests_total{flow_schema="exempt",priority_level="exempt"} 530
apiserver_flowcontrol_dispatched_requests_total{flow_schema="bench-op",priority_level="exempt"} 4
apiserver_flowcontrol_dispatched_requests_total_other{flow_schema="bench-op"} 99
identity_operator_reconciles_total{kind="Application",result="success"} 12
plain 3.5
"#;
        assert_eq!(
            sum(
                text,
                "apiserver_flowcontrol_dispatched_requests_total",
                &[("flow_schema", "bench-op")]
            ),
            4.0
        );
        assert_eq!(
            sum(text, "apiserver_flowcontrol_dispatched_requests_total", &[]),
            534.0
        );
        assert_eq!(sum(text, "plain", &[]), 3.5);
        let verbs = requests_by_verb(
            r#"apiserver_request_total{code="200",resource="applications",subresource="status",verb="PATCH"} 7
apiserver_request_total{code="409",resource="applications",subresource="status",verb="PATCH"} 1
apiserver_request_total{code="200",resource="",subresource="",verb="GET"} 2
"#,
        );
        assert_eq!(verbs["PATCH applications/status"], 8);
        assert_eq!(verbs["GET (non-resource)"], 2);
        let before = BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), 5)]);
        let after = BTreeMap::from([("a".to_owned(), 4), ("b".to_owned(), 5)]);
        assert_eq!(
            delta(&before, &after),
            BTreeMap::from([("a".to_owned(), 3)])
        );
        let s = samples(text, "identity_operator_reconciles_total");
        assert_eq!(s[0].labels["kind"], "Application");
        assert_eq!(s[0].labels["result"], "success");
    }
}
