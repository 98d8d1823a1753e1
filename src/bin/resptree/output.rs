//! Terminal output: colour only on a terminal, and never with `NO_COLOR` set.

use std::io::IsTerminal;

/// Whether and how to colour what goes to stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub(crate) fn stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    /// Whether stdout is an interactive terminal (for progress bars).
    pub(crate) fn is_terminal() -> bool {
        std::io::stdout().is_terminal()
    }

    /// A node id, highlighted.
    pub(crate) fn id(self, id: &str) -> String {
        self.paint("33", id)
    }

    /// A search match, in bold.
    pub(crate) fn matched(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Secondary text, dimmed.
    pub(crate) fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// An ASCII tree with each line's id highlighted (the first word after the
    /// tree drawing).
    pub(crate) fn tree(self, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len() + 16 * text.lines().count());
        for line in text.lines() {
            let start = line
                .char_indices()
                .find(|(_, c)| c.is_ascii_alphanumeric())
                .map_or(line.len(), |(i, _)| i);
            let (drawing, rest) = line.split_at(start);
            let end = rest.find(' ').unwrap_or(rest.len());
            let (id, tail) = rest.split_at(end);
            out.push_str(drawing);
            out.push_str(&self.id(id));
            out.push_str(tail);
            out.push('\n');
        }
        out
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The first line of `text`, trimmed.
pub(crate) fn first_line(text: &str) -> &str {
    text.trim().lines().next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_wraps_ids_only_when_enabled() {
        let plain = Style { color: false };
        let tree = "abcd1234 Paris → Louvre\n└── ef567890 Cheaper → Walk\n";
        assert_eq!(plain.tree(tree), tree);
        assert_eq!(plain.id("resp_1"), "resp_1");
        let color = Style { color: true };
        assert_eq!(
            color.tree(tree),
            "\x1b[33mabcd1234\x1b[0m Paris → Louvre\n└── \x1b[33mef567890\x1b[0m Cheaper → Walk\n"
        );
        assert_eq!(color.dim("## user"), "\x1b[2m## user\x1b[0m");
    }

    #[test]
    fn first_line_trims() {
        assert_eq!(first_line("\n  one \ntwo"), "one");
        assert_eq!(first_line(""), "");
    }
}
