//! Documentation rendered from the one clap model: shell completion scripts (the `completions`
//! subcommand) and man pages. `completions/` and `man/` in the repository hold their output,
//! and a test fails when those files are stale.

use std::io::Write;
use std::path::PathBuf;

use clap_complete::{Generator, Shell};
use color_eyre::eyre::{self, WrapErr};

use crate::cli::{self, CompletionsArgs};
use crate::exit::Exit;

/// The name the scripts and pages complete and document.
const BIN: &str = "asyncio-tool";

/// Every shell `completions/` holds a script for.
pub const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::Elvish,
    Shell::PowerShell,
];

/// `asyncio-tool completions SHELL`: writes the script to stdout.
pub fn run(args: &CompletionsArgs) -> eyre::Result<Exit> {
    let script = completion_script(args.shell);
    // The raw fd, not `std::io::stdout()`: a stdout closed at start (`>&-`) was reopened on
    // /dev/null by Rust's runtime, and only this fd says EBADF for it.
    crate::sys::stdio::stdout()
        .and_then(|fd| crate::sys::fdio::write_all(fd, &script))
        .map_err(|e| crate::report::stdout_error(e, "cannot write to standard output"))?;
    Ok(Exit::Success)
}

/// The completion script for `shell`, as bytes.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut command = cli::command();
    if shell == Shell::Bash {
        command = name_subcommands_for_bash(command, &BIN.replace('-', "__"));
    }
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut out);
    if shell == Shell::Fish {
        out.extend_from_slice(fish_value_completions(&command).as_bytes());
    }
    out
}

/// Lines clap_complete's fish generator (4.6.12) leaves out, derived from the same model: it
/// writes nothing for positionals (its documented limit), so `completions <Tab>` offered file
/// names; and a top-level option's values sit behind its `needs_command` condition, whose
/// argparse fails while the value is still missing, so `--color <Tab>` offered file names too.
fn fish_value_completions(command: &clap::Command) -> String {
    let values = |arg: &clap::Arg| -> Vec<String> {
        arg.get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect()
    };
    let mut out = String::new();
    for arg in command.get_opts() {
        let (Some(long), names) = (arg.get_long(), values(arg)) else {
            continue;
        };
        if !names.is_empty() {
            out.push_str(&format!(
                "complete -c {BIN} -n \"__fish_prev_arg_in --{long}\" -f -a \"{}\"\n",
                names.join(" ")
            ));
        }
    }
    let using = format!("__fish_{}_using_subcommand", BIN.replace('-', "_"));
    for sub in command.get_subcommands() {
        for arg in sub.get_positionals() {
            let names = values(arg).join(" ");
            if !names.is_empty() {
                out.push_str(&format!(
                    "complete -c {BIN} -n \"{using} {}; and not __fish_seen_subcommand_from \
                     {names}\" -f -a \"{names}\"\n",
                    sub.get_name()
                ));
            }
        }
    }
    out
}

/// clap_complete's bash generator (4.6.12 and before; clap-rs/clap#6421, #6529) spells a
/// subcommand's state two ways when the binary's name has a hyphen: the dispatch loop as
/// `asyncio__tool__subcmd__cat`, the case arms from the subcommand's bin name
/// `asyncio-tool cat` as `asyncio__subcmd__tool__subcmd__cat`, so no arm matches and nothing
/// below the top level completes. The arms take the bin name as clap left it, so giving each
/// subcommand a bin name whose root is already escaped (`asyncio__tool cat`) makes both
/// spellings agree; the script's own name and `complete` line still use the real name.
fn name_subcommands_for_bash(command: clap::Command, parent: &str) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    names.into_iter().fold(command, |command, name| {
        let bin_name = format!("{parent} {name}");
        command.mut_subcommand(&name, |sub| {
            name_subcommands_for_bash(sub.bin_name(bin_name.clone()), &bin_name)
        })
    })
}

/// Every generated file, as (path relative to the repository root, contents): the completion
/// scripts under clap_complete's default names, and one man page per command.
pub fn generated_files() -> eyre::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for shell in SHELLS {
        let name = shell.file_name(BIN);
        files.push((
            PathBuf::from("completions").join(name),
            completion_script(shell),
        ));
    }
    let mut command = cli::command();
    command.build();
    files.push((
        PathBuf::from("man").join(format!("{BIN}.1")),
        render_man(command.clone())?,
    ));
    for sub in command.get_subcommands() {
        let name = format!("{BIN}-{}", sub.get_name());
        // Man pages are titled after the page name; the usage line keeps the real invocation.
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("{BIN} {}", sub.get_name()));
        files.push((
            PathBuf::from("man").join(format!("{name}.1")),
            render_man(page)?,
        ));
    }
    Ok(files)
}

/// A man page: clap_mangen's sections, then the text after the options as EXAMPLES and NOTES,
/// EXIT STATUS, ENVIRONMENT and, where the command takes a DURATION, what one looks like,
/// the version, and SEE ALSO.
fn render_man(command: clap::Command) -> eyre::Result<Vec<u8>> {
    let mut out = Vec::new();
    let name = command.get_name().to_owned();
    let has_args = command.get_arguments().any(|a| !a.is_hide_set());
    let has_durations = command.get_arguments().any(|a| {
        a.get_value_names()
            .is_some_and(|v| v.iter().any(|n| n == "DURATION"))
    });
    let after_help = command
        .get_after_long_help()
        .or(command.get_after_help())
        .map(|text| after_help_sections(&text.to_string(), has_durations));
    let has_subcommands = command.has_subcommands();
    let man = clap_mangen::Man::new(command);
    let render = |out: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(out)?;
        man.render_name_section(out)?;
        man.render_synopsis_section(out)?;
        man.render_description_section(out)?;
        if has_args {
            man.render_options_section(out)?;
        }
        if has_subcommands {
            man.render_subcommands_section(out)?;
        }
        if let Some(sections) = &after_help {
            out.write_all(sections.as_bytes())?;
        }
        if has_durations {
            out.write_all(DURATIONS_SECTION.as_bytes())?;
        }
        out.write_all(exit_status_section(&name).as_bytes())?;
        out.write_all(ENVIRONMENT_SECTION.as_bytes())?;
        man.render_version_section(out)?;
        out.write_all(see_also_section(&name).as_bytes())
    };
    render(&mut out).wrap_err("cannot render a man page")?;
    Ok(out)
}

/// The help text after the options, laid out as a man page's sections (clap_mangen puts it
/// all under "EXTRA"): its "Examples:" paragraph as EXAMPLES, line for line so the columns
/// stay aligned, and the other paragraphs as NOTES, less those the page has a section of its
/// own for (the exit status, the environment, and with `durations` what a DURATION is).
fn after_help_sections(text: &str, durations: bool) -> String {
    let mut examples = String::new();
    let mut notes = Vec::new();
    for paragraph in text.split("\n\n") {
        if let Some(lines) = paragraph.strip_prefix("Examples:\n") {
            examples.push_str(".SH EXAMPLES\n.nf\n");
            for line in lines.lines() {
                examples.push_str(&roff_line(line));
            }
            examples.push_str(".fi\n");
            continue;
        }
        let own_section = ["Exit status:", "Environment:"]
            .iter()
            .any(|p| paragraph.starts_with(p))
            || (durations && paragraph.starts_with("A DURATION"));
        if !own_section && !paragraph.trim().is_empty() {
            notes.push(paragraph.lines().map(roff_line).collect::<String>());
        }
    }
    if !notes.is_empty() {
        examples.push_str(".SH NOTES\n");
        examples.push_str(&notes.join(".PP\n"));
    }
    examples
}

/// One line of help text as roff text: backslashes, hyphens and apostrophes escaped as
/// clap_mangen escapes them, and a leading period kept from reading as a request.
fn roff_line(line: &str) -> String {
    let text = line
        .replace('\\', "\\\\")
        .replace('-', "\\-")
        .replace('\'', "\\*(Aq");
    let guard = if text.starts_with('.') { "\\&" } else { "" };
    format!("{guard}{text}\n")
}

/// The SEE ALSO section of the page for `name`: the tools each command stands beside.
fn see_also_section(name: &str) -> String {
    let pages: &[(&str, u8)] = match name.strip_prefix(BIN) {
        Some("") => &[
            ("cat", 1),
            ("nc", 1),
            ("ncat", 1),
            ("socat", 1),
            ("ping", 8),
        ],
        Some("-cat") => &[(BIN, 1), ("cat", 1), ("pv", 1)],
        Some("-echo-server") => &[
            (BIN, 1),
            ("asyncio-tool-echo-client", 1),
            ("nc", 1),
            ("ncat", 1),
            ("socat", 1),
            ("systemd.socket", 5),
        ],
        Some("-echo-client") => &[
            (BIN, 1),
            ("asyncio-tool-echo-server", 1),
            ("nc", 1),
            ("ncat", 1),
            ("socat", 1),
            ("ping", 8),
            ("openssl-s_client", 1),
        ],
        Some("-report") => &[(BIN, 1), ("asyncio-tool-echo-client", 1), ("parallel", 1)],
        _ => &[(BIN, 1)],
    };
    let refs: Vec<String> = pages
        .iter()
        .map(|(page, section)| format!("\\fB{}\\fR({section})", page.replace('-', "\\-")))
        .collect();
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(",\n"))
}

const DURATIONS_SECTION: &str = r#".SH DURATIONS
A \fIDURATION\fR is plain seconds, as \fBsleep\fR(1) and \fBnc -w\fR take them (\fB5\fR,
\fB0.2\fR), or a number and a unit: \fB500ms\fR, \fB30s\fR, \fB5m\fR, \fB1h 30m\fR;
at least 1ms. Less (zero, \fB999us\fR) is a usage error (exit 2), as is a negative duration:
so short a timeout or wait would make its option useless. \fB--delay\fR (fault injection)
takes a unit.
"#;

const ENVIRONMENT_SECTION: &str = r#".SH ENVIRONMENT
.TP
\fBNO_COLOR\fR
When set and not empty, no colour on standard error, as \fB\-\-color never\fR.
.TP
\fBASYNCIO_TOOL_BACKTRACE\fR
When set to \fB1\fR, an error is shown as the full report (each cause on its own line and
where it was raised; a backtrace too when \fBRUST_BACKTRACE=1\fR is also set) instead of
one line. \fBRUST_BACKTRACE\fR alone does not change the one\-line errors.
"#;

/// The EXIT STATUS section of the page for `name` (a page name such as `asyncio-tool-cat`).
fn exit_status_section(name: &str) -> String {
    let failure = match name.strip_prefix(BIN) {
        Some("-cat") => {
            "A file could not be read or standard output could not be written (the other files are still printed)"
        }
        Some("-echo-server") => {
            "The address could not be listened on (in use, not permitted), or its line could not be written on standard output (closed, full, or nobody reads it: \\fB| true\\fR)"
        }
        Some("-echo-client") => {
            "The connection failed, was reset or timed out, or input was left unsent"
        }
        Some("-completions") => "Standard output could not be written",
        Some("-report") => {
            "A run was not ok (it lost or garbled messages, or connections failed), as that run exited; or an input could not be read or used (missing, not JSON, no histogram, another unit, runs of both modes in one total)"
        }
        _ => "A runtime failure: an unreadable file, a refused connection, an address in use",
    };
    // Each page names only the values its own command takes.
    let usage = match name.strip_prefix(BIN) {
        Some("-cat") => "A usage error: an unknown or ambiguous option.",
        Some("-echo-server") => {
            "A usage error: an unknown option, a bad address, duration, count or mode."
        }
        Some("-echo-client") => "A usage error: an unknown option, a bad address or duration.",
        Some("-completions") => "A usage error: an unknown option or shell.",
        Some("-report") => {
            "A usage error: an unknown option, no input, a bad label KEY, --merge with --group-by."
        }
        _ => "A usage error: an unknown option, a bad address, duration, count or mode.",
    };
    let mut rows = vec![
        (
            "0",
            "Success; also when the reader of standard output went away (\\fB| head\\fR).",
        ),
        ("1", failure),
        ("2", usage),
    ];
    match name.strip_prefix(BIN) {
        Some("-echo-client") => rows.push((
            "130",
            "Interrupted by Ctrl\\-C; in probe and load mode only during \\-\\-start\\-at's wait or \
             before the first connection (after it the summary is printed and the status is 0 \
             or 1 by it).",
        )),
        Some("" | "-cat") => rows.push(("130", "Interrupted by Ctrl\\-C.")),
        _ => {}
    }
    let mut section = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in rows {
        section.push_str(&format!(".TP\n\\fB{code}\\fR\n{meaning}\n"));
    }
    section
}
