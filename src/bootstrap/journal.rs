//! What bootstrap found, created, repaired (or, in a dry run, would): one line per resource,
//! logged as it happens and printed as the plan at the end.

use tracing::info;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Exists and matches.
    Ok,
    Create,
    Update,
    Delete,
}

impl Mark {
    fn symbol(self) -> char {
        match self {
            Self::Ok => '=',
            Self::Create => '+',
            Self::Update => '~',
            Self::Delete => '-',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mark: Mark,
    pub resource: String,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Journal {
    pub dry_run: bool,
    pub entries: Vec<Entry>,
}

impl Journal {
    pub fn new(dry_run: bool) -> Self {
        Self {
            dry_run,
            entries: Vec::new(),
        }
    }

    pub fn record(&mut self, mark: Mark, resource: impl Into<String>, detail: impl Into<String>) {
        let entry = Entry {
            mark,
            resource: resource.into(),
            detail: detail.into(),
        };
        let verb = match (mark, self.dry_run) {
            (Mark::Ok, _) => "up to date",
            (Mark::Create, true) => "would create",
            (Mark::Create, false) => "created",
            (Mark::Update, true) => "would update",
            (Mark::Update, false) => "updated",
            (Mark::Delete, true) => "would delete",
            (Mark::Delete, false) => "deleted",
        };
        info!(resource = %entry.resource, detail = %entry.detail, "{verb}");
        self.entries.push(entry);
    }

    pub fn changes(&self) -> usize {
        self.entries.iter().filter(|e| e.mark != Mark::Ok).count()
    }

    /// The plan as text: `+ create`, `~ update`, `- delete`, `= unchanged`.
    pub fn render(&self) -> String {
        self.entries
            .iter()
            .map(|e| {
                let detail = if e.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.detail)
                };
                format!("  {} {}{}\n", e.mark.symbol(), e.resource, detail)
            })
            .collect()
    }
}
