//! Aligned text tables, as `list`, `status` and `plugins` print them.

/// `rows` (the header first) as lines: each cell padded to its column's
/// widest, two spaces apart, no space at the end of a line.
pub(crate) fn aligned<S: AsRef<str>>(rows: &[Vec<S>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.as_ref().chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{:<width$}", cell.as_ref()))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up_and_lines_end_without_spaces() {
        let rows = vec![
            vec!["NAME", "STATE", "NOTE"],
            vec!["a-long-name", "up", ""],
            vec!["b", "starting", "ok"],
        ];
        assert_eq!(
            super::aligned(&rows),
            "NAME         STATE     NOTE\na-long-name  up\nb            starting  ok\n"
        );
    }
}
