//! The label sets of pglink's metrics.

use prometheus_client::encoding::EncodeLabelSet;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub target: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub target: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub target: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProblemLabels {
    pub target: String,
    pub problem: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub operation: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetInfoLabels {
    pub target: String,
    pub account: String,
    pub region: String,
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub revision: String,
}

impl OperationLabel {
    pub fn new(operation: &str) -> Self {
        Self {
            operation: operation.into(),
        }
    }
}

impl ErrorLabels {
    pub fn new(operation: &str, kind: &str) -> Self {
        Self {
            operation: operation.into(),
            kind: kind.into(),
        }
    }
}

impl StateLabels {
    pub fn new(target: &str, state: &str) -> Self {
        Self {
            target: target.into(),
            state: state.into(),
        }
    }
}

impl ProblemLabels {
    pub fn new(target: &str, problem: &str) -> Self {
        Self {
            target: target.into(),
            problem: problem.into(),
        }
    }
}
