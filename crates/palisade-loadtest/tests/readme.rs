//! The README's scenario file example is a file the runner accepts.

use palisade_loadtest::{plan, scenario::File};

#[test]
fn the_readme_example_plans() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("### Scenario files")
        .nth(1)
        .expect("the README has a Scenario files section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("with a TOML example");
    let file = File::parse(block).unwrap_or_else(|e| panic!("{e}"));
    let p = plan::build(
        &file,
        &plan::Settings {
            base_url: Some("http://127.0.0.1:3000".into()),
            scale: 1.0,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.scenarios.len(), 1);
    assert_eq!(p.thresholds.len(), 4);
    assert_eq!(p.accounts, 4);
}
