//! The collector of errors and warnings while a document is read.

use crate::error::ConfigIssue;

/// Errors and warnings found so far, in the order they were found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    errors: Vec<ConfigIssue>,
    warnings: Vec<ConfigIssue>,
}

impl Report {
    pub(crate) fn error(&mut self, issue: ConfigIssue) {
        self.errors.push(issue);
    }

    pub(crate) fn warn(&mut self, issue: ConfigIssue) {
        self.warnings.push(issue);
    }

    /// How many errors have been found; compare two counts to learn whether
    /// a part of the document added any.
    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    #[cfg(test)]
    pub(crate) fn errors(&self) -> &[ConfigIssue] {
        &self.errors
    }

    pub(crate) fn into_parts(self) -> (Vec<ConfigIssue>, Vec<ConfigIssue>) {
        (self.errors, self.warnings)
    }
}
