//! Generated inputs: whatever the Markdown, conversion must not panic, must
//! produce ADF Jira accepts, and must reach a fixpoint after one round trip.

mod common;

use common::{Rng, random_markdown, validate};
use toolhost_adf::{adf_to_markdown, markdown_to_adf};

fn check(md: &str) {
    let adf = markdown_to_adf(md);
    if let Err(err) = validate(&adf) {
        panic!("invalid ADF for {md:?}: {err}\n{adf:#}");
    }
    let rendered = adf_to_markdown(&adf);
    let again = markdown_to_adf(&rendered);
    if let Err(err) = validate(&again) {
        panic!("invalid ADF after a round trip of {md:?}: {err}\n{rendered}");
    }
    assert_eq!(
        again, adf,
        "round trip changed the document\nmarkdown: {md:?}\nrendered: {rendered:?}"
    );
}

#[test]
fn generated_markdown_converts_to_valid_stable_adf() {
    let mut rng = Rng::new(0x5eed);
    for _ in 0..600 {
        let md = random_markdown(&mut rng, 24);
        check(&md);
    }
}

#[test]
fn generated_adf_renders_without_losing_text() {
    let mut rng = Rng::new(0xadf);
    for _ in 0..400 {
        let adf = common::random_adf(&mut rng);
        let md = adf_to_markdown(&adf);
        let back = markdown_to_adf(&md);
        if let Err(err) = validate(&back) {
            panic!("invalid ADF from rendered {adf}: {err}\n{md}");
        }
        // Everything written reaches the Markdown and comes back.
        let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        let mut after = Vec::new();
        common::texts(&back, &mut after);
        let after = squash(&after.concat());
        let mut before = Vec::new();
        common::texts(&adf, &mut before);
        for text in before {
            assert!(
                after.contains(&squash(&text)),
                "lost {text:?}\nfrom {adf}\nmarkdown {md}"
            );
        }
        // And from then on the round trip is stable.
        assert_eq!(
            markdown_to_adf(&adf_to_markdown(&back)),
            back,
            "unstable: {md}"
        );
    }
}

#[test]
fn pathological_inputs_stay_bounded() {
    let inputs = [
        format!("{}x", "> ".repeat(5_000)),
        (0..2_000)
            .map(|d| format!("{}- x\n", "  ".repeat(d)))
            .collect(),
        format!("{}x", "- ".repeat(3_000)),
        "[".repeat(20_000),
        "*a_".repeat(10_000),
        "**a** *b* ".repeat(5_000),
        "`".repeat(10_001),
        format!("{}x{}", "<b>".repeat(3_000), "</b>".repeat(3_000)),
        "| a |\n|---|\n".repeat(2_000),
        "[~accountid:a]".repeat(5_000),
    ];
    for md in &inputs {
        let adf = markdown_to_adf(md);
        if let Err(err) = validate(&adf) {
            panic!("invalid ADF for a {}-byte input: {err}", md.len());
        }
        let rendered = adf_to_markdown(&adf);
        assert_eq!(
            markdown_to_adf(&rendered),
            adf,
            "unstable for a {}-byte input",
            md.len()
        );
    }
}
