//! The workloads file (`underling-worker --workloads FILE`): TOML, one `[[workload]]` table
//! per workload, with the fields of [`underling::WorkloadSpec`].

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use underling::WorkloadSpec;

use crate::error::WorkloadError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    workload: Vec<WorkloadSpec>,
}

/// Parses and checks workloads written as TOML:
///
/// ```
/// let specs = underling_workload::parse_workloads(r#"
///     [[workload]]
///     name = "mail.send"
///     url = "http://127.0.0.1:9000/send"
///     mode = "async"
///     lease = "10m"
///     headers = { Authorization = "Bearer ${MAIL_TOKEN}", X-Api-Key = "env:MAIL_KEY" }
/// "#).unwrap();
/// assert_eq!(specs[0].name, "mail.send");
/// ```
pub fn parse_workloads(text: &str) -> Result<Vec<WorkloadSpec>, WorkloadError> {
    parse(text, None)
}

/// Reads, parses and checks a workloads file.
pub fn load_workloads(path: &Path) -> Result<Vec<WorkloadSpec>, WorkloadError> {
    let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, Some(path))
}

fn parse(text: &str, path: Option<&Path>) -> Result<Vec<WorkloadSpec>, WorkloadError> {
    let file: File = toml::from_str(text).map_err(|e| WorkloadError::Parse {
        path: path.map(Path::to_path_buf),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    let mut names = BTreeSet::new();
    for spec in &file.workload {
        spec.validate()?;
        if !names.insert(spec.name.as_str()) {
            return Err(WorkloadError::Duplicate(spec.name.clone()));
        }
    }
    Ok(file.workload)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use underling::WorkloadMode;

    use super::*;

    #[test]
    fn a_file_reads_with_the_defaults_filled_in() {
        let specs = parse_workloads(
            r#"
            [[workload]]
            name = "a"
            url = "http://127.0.0.1:1/a"

            [[workload]]
            name = "b"
            url = "http://127.0.0.1:1/b"
            mode = "async"
            timeout = "2s"
            lease = "1m"
            max_concurrency = 3
            [workload.headers]
            Authorization = "Bearer ${T}"
            "#,
        )
        .unwrap();
        assert_eq!(specs[0], WorkloadSpec::new("a", "http://127.0.0.1:1/a"));
        assert_eq!(specs[1].mode, WorkloadMode::Async);
        assert_eq!(specs[1].timeout, Duration::from_secs(2));
        assert_eq!(specs[1].lease, Some(Duration::from_secs(60)));
        assert_eq!(specs[1].max_concurrency, 3);
        assert_eq!(specs[1].headers["Authorization"], "Bearer ${T}");
    }

    #[test]
    fn an_unknown_mode_is_refused_naming_the_line() {
        let err =
            parse_workloads("[[workload]]\nname = \"a\"\nurl = \"http://h/\"\nmode = \"later\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("invalid workloads file: TOML parse error at line 4"),
            "{err}"
        );
        assert!(
            err.contains("unknown variant `later`, expected `sync` or `async`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_field_and_a_bad_duration_are_refused() {
        let err =
            parse_workloads("[[workload]]\nname = \"a\"\nurl = \"http://h/\"\ntimout = \"1s\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `timout`"), "{err}");
        let err = parse_workloads(
            "[[workload]]\nname = \"a\"\nurl = \"http://h/\"\ntimeout = \"soon\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid duration \"soon\""), "{err}");
    }

    #[test]
    fn two_workloads_of_one_name_are_refused() {
        let err = parse_workloads(
            "[[workload]]\nname = \"a\"\nurl = \"http://h/\"\n[[workload]]\nname = \"a\"\nurl = \"http://h/\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "two workloads are named \"a\": names must be unique"
        );
    }

    #[test]
    fn a_bad_url_is_refused_with_the_libraries_message() {
        let err = parse_workloads("[[workload]]\nname = \"a\"\nurl = \"ftp://h/\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid option: workload \"a\": invalid url \"ftp://h/\": the scheme must be http or https"
        );
    }
}
