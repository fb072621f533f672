//! What the audit log says about a governance message: its subject, its detail fields and the
//! stable names of enforcement actions.

use std::collections::BTreeMap;

use arqon_proto::GovernanceCommand;
use arqon_proto::v1::enforce::Action;

use super::proposals::proposal_digest;

/// What a message is about (audit `subject`) and its governance fields (audit `detail`).
pub(super) fn describe(message: &GovernanceCommand) -> (String, BTreeMap<String, String>) {
    let mut d = BTreeMap::new();
    let subject = match message {
        GovernanceCommand::Telemetry(t) => {
            d.insert("metrics".into(), t.metrics.len().to_string());
            t.node_id.clone()
        }
        GovernanceCommand::Proposal(p) => {
            d.insert("digest".into(), proposal_digest(p));
            d.insert("confidence".into(), p.confidence.to_string());
            d.insert("reason".into(), p.reason.clone());
            if let Some(v) = p.variant_id {
                d.insert("variant_id".into(), v.to_string());
            }
            insert_params(&mut d, p.params.iter());
            p.id.clone()
        }
        GovernanceCommand::Alert(a) => {
            d.insert("severity".into(), a.severity().as_str_name().to_owned());
            d.insert("message".into(), a.message.clone());
            String::new()
        }
        GovernanceCommand::Approval(a) => {
            d.insert("digest".into(), a.proposal_digest.clone());
            if let Some(r) = &a.rollout {
                d.insert(
                    "rollout".into(),
                    format!(
                        "{}/{}/{}",
                        r.initial_percent, r.increment_per_minute, r.max_percent
                    ),
                );
            }
            a.proposal_id.clone()
        }
        GovernanceCommand::Rejection(r) => {
            d.insert("reason".into(), r.reason.clone());
            r.proposal_id.clone()
        }
        GovernanceCommand::Enforce(e) => {
            d.insert("reason".into(), e.reason.clone());
            match &e.action {
                Some(Action::SetVariant(v)) => {
                    d.insert("variant_id".into(), v.variant_id.to_string());
                }
                Some(Action::SetParams(p)) => insert_params(&mut d, p.params.iter()),
                _ => {}
            }
            action_name(e.action.as_ref()).to_owned()
        }
        GovernanceCommand::CatalogUpdate(c) => {
            d.insert("source_uri".into(), c.source_uri.clone());
            c.version.to_string()
        }
    };
    (subject, d)
}

fn insert_params<'a>(
    d: &mut BTreeMap<String, String>,
    params: impl Iterator<Item = (&'a String, &'a f64)>,
) {
    for (k, v) in params {
        d.insert(format!("param.{k}"), v.to_string());
    }
}

/// The stable name of an enforcement action.
pub fn action_name(action: Option<&Action>) -> &'static str {
    match action {
        Some(Action::SetVariant(_)) => "set_variant",
        Some(Action::SetParams(_)) => "set_params",
        Some(Action::EmergencyStop(_)) => "emergency_stop",
        Some(Action::PauseAdaptation(_)) => "pause_adaptation",
        Some(Action::ResumeAdaptation(_)) => "resume_adaptation",
        None => "none",
    }
}
