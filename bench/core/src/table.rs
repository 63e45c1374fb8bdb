//! A GitHub pipe table, laid out as Python's `tabulate(..., tablefmt="pipe")`
//! lays it out (the format `compare-llama-bench.py` prints): each column as wide
//! as its widest cell (and two wider than its title), text left-aligned (`:---`), numbers right-aligned (`---:`).

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns (the title is right-aligned too).
    Right,
}

/// A table being built row by row.
#[derive(Debug, Clone, Default)]
pub struct Table {
    titles: Vec<String>,
    aligns: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles and alignments.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = (S, Align)>) -> Self {
        let (titles, aligns) = columns.into_iter().map(|(t, a)| (t.into(), a)).unzip();
        Table {
            titles,
            aligns,
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank and extra cells are dropped.
    pub fn push(&mut self, mut cells: Vec<String>) {
        cells.resize(self.titles.len(), String::new());
        self.rows.push(cells);
    }

    /// The number of rows added.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, ending with a newline.
    pub fn render(&self) -> String {
        // tabulate makes each column at least two wider than its title.
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.titles[i].chars().count() + 2])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.titles.len()).map(width).collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(&self.aligns)
                .map(|((c, &w), a)| match a {
                    Align::Left => format!(" {c:<w$} "),
                    Align::Right => format!(" {c:>w$} "),
                })
                .collect();
            format!("|{}|\n", padded.join("|"))
        };
        let rule: Vec<String> = widths
            .iter()
            .zip(&self.aligns)
            .map(|(&w, a)| match a {
                Align::Left => format!(":{}", "-".repeat(w + 1)),
                Align::Right => format!("{}:", "-".repeat(w + 1)),
            })
            .collect();
        let mut out = line(&self.titles);
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_layout() {
        let mut t = Table::new([
            ("Model", Align::Left),
            ("Test", Align::Left),
            ("Speedup", Align::Right),
        ]);
        t.push(vec![
            "qwen3next 80B.A3B Q4_0".into(),
            "pp512".into(),
            "1.05".into(),
        ]);
        t.push(vec!["x".into(), "tg128@d4096".into()]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.render(),
            "\
| Model                  | Test        |   Speedup |
|:-----------------------|:------------|----------:|
| qwen3next 80B.A3B Q4_0 | pp512       |      1.05 |
| x                      | tg128@d4096 |           |
"
        );
    }
}
