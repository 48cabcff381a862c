//! `completions/` and `man/` are generated from the clap model and committed. This test renders
//! them in memory and fails when a committed file differs; `UPDATE_GENERATED=1 cargo test`
//! rewrites them instead.

use std::path::Path;

#[test]
fn committed_completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_GENERATED").is_some_and(|v| v == "1");
    let files = asyncio_tool::completions::generated_files().expect("render docs");
    let mut stale = Vec::new();
    for (rel, fresh) in &files {
        let path = root.join(rel);
        let committed = std::fs::read(&path).unwrap_or_default();
        if committed != *fresh {
            if update {
                std::fs::create_dir_all(path.parent().expect("has a folder")).expect("mkdir");
                std::fs::write(&path, fresh).expect("write generated file");
            } else {
                stale.push(rel.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}; run `UPDATE_GENERATED=1 cargo test --test tests generated` and commit them"
    );
}

#[test]
fn completion_files_match_what_the_subcommand_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in [
        ("bash", "asyncio-tool.bash"),
        ("zsh", "_asyncio-tool"),
        ("fish", "asyncio-tool.fish"),
        ("elvish", "asyncio-tool.elv"),
        ("powershell", "_asyncio-tool.ps1"),
    ] {
        let out = crate::util::tool(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let committed = std::fs::read(root.join("completions").join(file)).unwrap_or_default();
        assert!(
            out.stdout == committed,
            "completions/{file} differs from `completions {shell}`"
        );
    }
}

#[test]
fn every_man_page_documents_every_long_option() {
    let files = asyncio_tool::completions::generated_files().expect("render docs");
    let mut command = asyncio_tool::cli::command();
    command.build();
    let mut pages = vec![("asyncio-tool.1".to_string(), command.clone())];
    for sub in command.get_subcommands() {
        pages.push((format!("asyncio-tool-{}.1", sub.get_name()), sub.clone()));
    }
    for (page, cmd) in pages {
        let (_, text) = files
            .iter()
            .find(|(p, _)| p.ends_with(&page))
            .unwrap_or_else(|| panic!("no man page {page}"));
        let text = String::from_utf8_lossy(text);
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                // roff escapes the dashes: \-\-long
                let escaped = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(text.contains(&escaped), "{page} lacks --{long}");
            }
        }
    }
}
