//! Cobertura XML: the `<coverage>` root carries `lines-covered` and
//! `lines-valid` (exact counts, preferred) and `line-rate` (0-1).

use roxmltree::{Document, ParsingOptions};

use super::{LineCoverage, Lines};

/// Reads the root `<coverage>` element's line coverage.
pub fn parse(text: &str) -> Result<LineCoverage, String> {
    // Cobertura's own writer emits a DOCTYPE; no external entity is fetched.
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if !root.has_tag_name("coverage") {
        return Err(format!(
            "the root element is <{}>, expected <coverage>; is this a Cobertura XML report?",
            root.tag_name().name()
        ));
    }
    let count = |name: &str| -> Result<Option<u64>, String> {
        root.attribute(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("<coverage {name}=\"{v}\">: expected a whole number"))
            })
            .transpose()
    };
    if let (Some(covered), Some(valid)) = (count("lines-covered")?, count("lines-valid")?) {
        return Ok(LineCoverage::Counts(Lines { valid, covered }));
    }
    let rate = root.attribute("line-rate").ok_or(
        "<coverage> has neither lines-covered/lines-valid nor line-rate; cannot tell line coverage",
    )?;
    let value: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("<coverage line-rate=\"{rate}\">: expected a number"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "<coverage line-rate=\"{rate}\">: expected a rate between 0 and 1"
        ));
    }
    Ok(LineCoverage::Rate(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COVERAGE_PY: &str = include_str!("../../../../tests/fixtures/test-stage/cobertura.xml");
    const RATE_ONLY: &str =
        include_str!("../../../../tests/fixtures/test-stage/cobertura-rate-only.xml");

    #[test]
    fn counts_win_over_the_rate() -> Result<(), String> {
        let c = parse(COVERAGE_PY)?;
        assert_eq!(
            c,
            LineCoverage::Counts(Lines {
                valid: 120,
                covered: 99
            })
        );
        assert_eq!(c.percent(), Some(82.5));
        Ok(())
    }

    #[test]
    fn rate_alone_with_a_doctype() -> Result<(), String> {
        let c = parse(RATE_ONLY)?;
        assert_eq!(c.percent(), Some(61.25));
        Ok(())
    }

    #[test]
    fn bad_reports_are_errors() {
        assert!(parse("<testsuites/>").is_err());
        assert!(parse("<coverage/>").is_err());
        assert!(parse(r#"<coverage line-rate="1.5"/>"#).is_err());
        assert!(parse(r#"<coverage line-rate="x"/>"#).is_err());
        assert!(parse(r#"<coverage lines-covered="x" lines-valid="2"/>"#).is_err());
        assert!(parse("SF:a.py\nLF:1\n").is_err());
    }
}
