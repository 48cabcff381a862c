//! `completions/` and `man/` are generated from the clap model and committed. This test renders
//! them in memory and fails when a committed file differs; `UPDATE_GENERATED=1 cargo test`
//! rewrites them instead.

use std::path::Path;

#[test]
fn committed_completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_GENERATED").is_some_and(|v| v == "1");
    let files = asyncio_tool::cmd::completions::generated_files().expect("render docs");
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
    let files = asyncio_tool::cmd::completions::generated_files().expect("render docs");
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

/// `program` runs (`-c 'exit 0'`): a shell that is installed and works.
fn runs(program: &str) -> bool {
    crate::util::other(program)
        .arg("-c")
        .arg("exit 0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program` with `args`, bounded, and returns its stdout; fails on a non-zero exit.
fn run_shell(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let child = crate::util::other(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let out = crate::util::output_timeout(child, std::time::Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What completion behaviour the committed scripts must show in every shell: the line typed,
/// then exactly the words offered.
const CASES: [(&str, &[&str]); 7] = [
    (
        "asyncio-tool cat --sh",
        &[
            "--show-all",
            "--show-ends",
            "--show-nonprinting",
            "--show-tabs",
        ],
    ),
    ("asyncio-tool echo-client --wa", &["--wait", "--warmup"]),
    (
        "asyncio-tool echo-server --max",
        &["--max-connections", "--max-per-ip"],
    ),
    (
        "asyncio-tool ",
        &["cat", "completions", "echo-client", "echo-server", "report"],
    ),
    ("asyncio-tool report --gr", &["--group-by"]),
    (
        "asyncio-tool completions ",
        &["bash", "elvish", "fish", "powershell", "zsh"],
    ),
    ("asyncio-tool --color ", &["always", "auto", "never"]),
];

/// The words offered for `line`, read from the shell's output (one per line, any description
/// after a tab dropped), sorted, and without options when subcommands are wanted.
fn offered(output: &str, line: &str) -> Vec<String> {
    let mut words: Vec<String> = output
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(l).trim().to_owned())
        .filter(|w| !w.is_empty() && w != "<done>")
        .filter(|w| !line.ends_with(' ') || !w.starts_with('-'))
        .collect();
    words.sort();
    words.dedup();
    words
}

fn assert_cases(shell: &str, complete: impl Fn(&str) -> String) {
    for (line, want) in CASES {
        let got = offered(&complete(line), line);
        assert_eq!(got, want, "{shell}: completing {line:?}");
    }
}

/// Bash: the committed script sourced after bash-completion, its function found through
/// `complete -p` and called as readline would, with COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT.
const BASH_HARNESS: &str = r#"
source /usr/share/bash-completion/bash_completion
source completions/asyncio-tool.bash
fn=$(complete -p asyncio-tool | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_LINE=$1
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMPREPLY=()
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";

#[test]
fn bash_completes_options_below_the_top_level() {
    let present = crate::util::peer_present("bash", runs("bash"))
        && crate::util::peer_present("bash-completion", Path::new(BASH_COMPLETION).exists());
    if !present {
        return;
    }
    assert_cases("bash", |line| {
        run_shell(
            "bash",
            &[
                "-c".as_ref(),
                BASH_HARNESS.as_ref(),
                "harness".as_ref(),
                line.as_ref(),
            ],
        )
    });
}

/// zsh: an interactive `zsh -f -i` in a zpty with compinit over `completions/`, Tab bound to
/// complete-word, and compadd wrapped to record every match it adds; a post-completion hook
/// marks the end, so the harness waits for that state rather than for a fixed time.
const ZSH_HARNESS: &str = r#"
zmodload zsh/zpty || exit 3
dir=$1 out=$2 line=$3
: > $out
zpty -b z zsh -f -i
zpty -w z "PROMPT='' RPROMPT=''; fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "compadd() { local -a __hits; if [[ \${@[(I)-[OAD]]} -gt 0 ]]; then builtin compadd \"\$@\"; return; fi; builtin compadd -A __hits \"\$@\"; print -rl -- \$__hits >> ${(q)out}; builtin compadd \"\$@\"; }"
zpty -w z "_capture_done() { print -r -- '<done>' >> ${(q)out}; }; comppostfuncs=(_capture_done)"
zpty -w z "bindkey '^I' complete-word"
zpty -w -n z "$line"$'\t'
for i in {1..600}; do
  grep -qx '<done>' $out 2>/dev/null && break
  sleep 0.05
done
zpty -d z
grep -qx '<done>' $out || { echo "completion did not finish" >&2; exit 4; }
cat $out
"#;

#[test]
fn zsh_completes_options_below_the_top_level() {
    if !crate::util::peer_present("zsh", runs("zsh")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("matches");
    let completions = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    assert_cases("zsh", |line| {
        run_shell(
            "zsh",
            &[
                "-f".as_ref(),
                "-c".as_ref(),
                ZSH_HARNESS.as_ref(),
                "harness".as_ref(),
                completions.as_os_str(),
                out.as_os_str(),
                line.as_ref(),
            ],
        )
    });
}

#[test]
fn fish_completes_options_below_the_top_level() {
    if !crate::util::peer_present("fish", runs("fish")) {
        return;
    }
    assert_cases("fish", |line| {
        let script = "source completions/asyncio-tool.fish; complete -C $argv[1]";
        run_shell(
            "fish",
            &[
                "--no-config".as_ref(),
                "-c".as_ref(),
                script.as_ref(),
                line.as_ref(),
            ],
        )
    });
}

fn man_page(name: &str) -> String {
    let files = asyncio_tool::cmd::completions::generated_files().expect("render docs");
    let (_, text) = files
        .iter()
        .find(|(p, _)| p.ends_with(name))
        .unwrap_or_else(|| panic!("no man page {name}"));
    String::from_utf8_lossy(text).into_owned()
}

#[test]
fn cat_man_synopsis_is_gnus() {
    let page = man_page("asyncio-tool-cat.1");
    let synopsis = page
        .split(".SH SYNOPSIS\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("a SYNOPSIS line");
    assert!(
        synopsis.contains("[OPTION]... [FILE]..."),
        "synopsis: {synopsis}"
    );
    assert!(!synopsis.contains(" \\fR]"), "no `[-e ]`: {synopsis}");
}

#[test]
fn every_man_page_has_exit_status_and_environment() {
    for page in [
        "asyncio-tool.1",
        "asyncio-tool-cat.1",
        "asyncio-tool-echo-server.1",
        "asyncio-tool-echo-client.1",
        "asyncio-tool-completions.1",
    ] {
        let text = man_page(page);
        let section = text
            .split(".SH \"EXIT STATUS\"\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{page} has no EXIT STATUS"));
        for code in ["\\fB0\\fR", "\\fB1\\fR", "\\fB2\\fR"] {
            assert!(section.contains(code), "{page}: exit {code}");
        }
        assert!(text.contains(".SH ENVIRONMENT"), "{page}");
        assert!(text.contains("ASYNCIO_TOOL_BACKTRACE"), "{page}");
    }
    for page in ["asyncio-tool-echo-server.1", "asyncio-tool-echo-client.1"] {
        assert!(
            man_page(page).contains("at least 1ms"),
            "{page} says what a DURATION is"
        );
    }
}

/// Item 23: the `[-e ]` defect fixed for cat's synopsis is still in echo-client's as `[-N ]`.
#[test]
fn echo_client_man_synopsis_has_no_empty_flag_bracket() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/asyncio-tool-echo-client.1"),
    )
    .expect("man page");
    let synopsis = page
        .split(".SH SYNOPSIS\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("a SYNOPSIS line");
    assert!(!synopsis.contains(" \\fR]"), "`[-N ]` in: {synopsis}");
}

/// Items 2 and 22: `completions bash >&-` exits 0 with the script thrown away (Rust reopened
/// fd 1 on /dev/null), while `--help >&-` already fails with "Bad file descriptor".
#[test]
fn completions_with_stdout_closed_fails() {
    use std::os::unix::process::CommandExt;
    let mut cmd = crate::util::std_tool(["completions", "bash"]);
    cmd.stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: close(2) on fd 1 between fork and exec touches no memory; `completions bash >&-`.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = crate::util::output_timeout(cmd.spawn().unwrap(), std::time::Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err:?}");
    assert!(err.contains("Bad file descriptor"), "stderr: {err:?}");
}

/// Each page's EXIT STATUS speaks of its own command: cat and completions take no address,
/// duration or count.
#[test]
fn exit_status_sections_fit_their_command() {
    for (page, absent) in [
        ("asyncio-tool-cat.1", "address"),
        ("asyncio-tool-completions.1", "address"),
        ("asyncio-tool-cat.1", "duration"),
        ("asyncio-tool-completions.1", "count"),
    ] {
        let text = man_page(page);
        let section = text
            .split(".SH \"EXIT STATUS\"\n")
            .nth(1)
            .and_then(|s| s.split(".SH ").next())
            .unwrap_or_else(|| panic!("{page} has no EXIT STATUS"));
        assert!(!section.contains(absent), "{page}: {section}");
    }
    let client = man_page("asyncio-tool-echo-client.1");
    assert!(client.contains("a bad address or duration"), "{client}");
}

/// The top-level help names every transport, not "a TCP echo server".
#[test]
fn top_level_help_names_every_transport() {
    for flag in ["-h", "--help"] {
        let out = crate::util::tool([flag]).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        let about = help.split("\n\n").next().unwrap_or_default();
        assert!(!help.contains("TCP echo server"), "{flag}: {about}");
        for transport in ["TCP", "UDP", "Unix", "TLS"] {
            assert!(
                about.contains(transport),
                "{flag} lacks {transport}: {about}"
            );
        }
    }
}

/// Man pages name the text after the options (EXAMPLES, NOTES; clap_mangen's "EXTRA" says
/// nothing) and end with SEE ALSO naming the tools each command stands beside.
#[test]
fn man_pages_have_examples_and_see_also() {
    let see_also = [
        ("asyncio-tool", &["nc", "ncat", "socat", "cat"][..]),
        ("asyncio-tool-cat", &["asyncio\\-tool", "cat"]),
        ("asyncio-tool-echo-server", &["nc", "ncat", "socat"]),
        ("asyncio-tool-echo-client", &["nc", "ncat", "socat"]),
        ("asyncio-tool-completions", &["asyncio\\-tool"]),
    ];
    for (page, tools) in see_also {
        let text = man_page(&format!("{page}.1"));
        assert!(!text.contains(".SH EXTRA"), "{page} has an EXTRA heading");
        assert!(text.contains(".SH EXAMPLES\n"), "{page} has no EXAMPLES");
        let (_, after) = text
            .split_once(".SH \"SEE ALSO\"\n")
            .unwrap_or_else(|| panic!("{page} has no SEE ALSO"));
        assert!(
            !after.contains(".SH"),
            "{page}: SEE ALSO is not the last section"
        );
        for tool in tools {
            assert!(
                after.contains(&format!("\\fB{tool}\\fR(1)")),
                "{page} lacks {tool}(1)"
            );
        }
    }
    for page in ["asyncio-tool", "asyncio-tool-echo-client"] {
        let text = man_page(&format!("{page}.1"));
        assert!(text.contains("\\fBping\\fR(8)"), "{page} lacks ping(8)");
    }
    // What the page has a section for is not said again in NOTES.
    let top = man_page("asyncio-tool.1");
    assert!(!top.contains("Exit status: 0 success"), "{top}");
    assert_eq!(top.matches("ASYNCIO_TOOL_BACKTRACE").count(), 1, "{top}");
}
