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
    /// The action's name in `--output json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

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
    /// AWS answered the change's call(s) with success (an `Ok` entry needs no call; a dry
    /// run's changes are plans and never confirmed).
    pub confirmed: bool,
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

    /// Records a finding (`Ok`) or a change about to be made; a change counts as done only
    /// once [`Journal::confirm`] says AWS accepted it.
    pub fn record(&mut self, mark: Mark, resource: impl Into<String>, detail: impl Into<String>) {
        let entry = Entry {
            mark,
            resource: resource.into(),
            detail: detail.into(),
            confirmed: mark == Mark::Ok,
        };
        let verb = match (mark, self.dry_run) {
            (Mark::Ok, _) => "up to date",
            (Mark::Create, true) => "would create",
            (Mark::Create, false) => "creating",
            (Mark::Update, true) => "would update",
            (Mark::Update, false) => "updating",
            (Mark::Delete, true) => "would delete",
            (Mark::Delete, false) => "deleting",
        };
        info!(resource = %entry.resource, detail = %entry.detail, "{verb}");
        self.entries.push(entry);
    }

    /// Every change recorded so far went through: AWS answered its calls with success. (The
    /// calls are made in the order the changes are recorded, and a failure ends the run.)
    pub fn confirm(&mut self) {
        for entry in self.entries.iter_mut().filter(|e| !e.confirmed) {
            entry.confirmed = true;
            let verb = match entry.mark {
                Mark::Ok => "up to date",
                Mark::Create => "created",
                Mark::Update => "updated",
                Mark::Delete => "deleted",
            };
            info!(resource = %entry.resource, detail = %entry.detail, "{verb}");
        }
    }

    /// After a failure: what AWS confirmed, and what was attempted without a confirmation
    /// (a dry run changed nothing at all).
    pub fn render_failure(&self) -> String {
        let lines = |keep: &dyn Fn(&Entry) -> bool| -> String {
            self.entries
                .iter()
                .filter(|e| e.mark != Mark::Ok && keep(e))
                .map(line)
                .collect()
        };
        if self.dry_run {
            let planned = lines(&|_| true);
            return if planned.is_empty() {
                "dry run: nothing was changed (the failure came before any change was planned)\n"
                    .to_string()
            } else {
                format!("dry run: nothing was changed; planned before the failure:\n{planned}")
            };
        }
        let done = lines(&|e| e.confirmed);
        let attempted = lines(&|e| !e.confirmed);
        let mut text = if done.is_empty() {
            "nothing was changed before the failure\n".to_string()
        } else {
            format!("changed before the failure:\n{done}")
        };
        if !attempted.is_empty() {
            text.push_str(&format!(
                "attempted, not confirmed by AWS (the next run finds out):\n{attempted}"
            ));
        }
        text
    }

    pub fn changes(&self) -> usize {
        self.entries.iter().filter(|e| e.mark != Mark::Ok).count()
    }

    /// The plan as text: `+ create`, `~ update`, `- delete`, `= unchanged`.
    pub fn render(&self) -> String {
        self.entries.iter().map(line).collect()
    }
}

fn line(e: &Entry) -> String {
    let detail = if e.detail.is_empty() {
        String::new()
    } else {
        format!(": {}", e.detail)
    };
    format!("  {} {}{}\n", e.mark.symbol(), e.resource, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lists_only_what_aws_confirmed_as_changed() {
        let mut j = Journal::new(false);
        j.record(Mark::Ok, "security group", "sg-1");
        j.record(Mark::Create, "target group", "TCP 5432");
        j.confirm();
        j.record(Mark::Create, "internal NLB", "in 2 AZs");
        let text = j.render_failure();
        let (done, attempted) = text.split_once("attempted").unwrap();
        assert!(
            done.contains("+ target group") && !done.contains("NLB"),
            "{text}"
        );
        assert!(attempted.contains("+ internal NLB"), "{text}");
        assert!(
            !text.contains("security group"),
            "unchanged resources are not news: {text}"
        );
    }

    #[test]
    fn a_dry_run_failure_says_nothing_was_changed() {
        let mut j = Journal::new(true);
        j.record(Mark::Create, "internal NLB", "in 2 AZs");
        let text = j.render_failure();
        assert!(text.starts_with("dry run: nothing was changed"), "{text}");
        assert!(!text.contains("changed before"), "{text}");
        // A failure before anything was planned lists no empty plan.
        let text = Journal::new(true).render_failure();
        assert_eq!(
            text,
            "dry run: nothing was changed (the failure came before any change was planned)\n"
        );
        let mut j = Journal::new(false);
        j.record(Mark::Create, "target group", "TCP 5432");
        assert!(j
            .render_failure()
            .starts_with("nothing was changed before the failure"));
    }
}
