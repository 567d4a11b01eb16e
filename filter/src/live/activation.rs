//! Turning bundle bytes into a policy ready to evaluate, in full, before it replaces anything:
//! read within limits, verify the signature (bundles from a service), assemble, load. The
//! proxy swaps the active policy only on `Ok`; every `Err` has a stable code.

use crate::audit::config::DecisionLogs;
use crate::audit::mask::LogRules;
use crate::bundle::signature::{self, SignatureError, Verification};
use crate::bundle::{archive, Bundle, BundleError, Layout, Limits, RegoVersion};
use crate::decision_path::DecisionPath;
use crate::engine::{LoadError, Policy};

/// Why a bundle could not be activated.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl ActivationError {
    /// A stable kebab-case code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ActivationError::Bundle(e) => e.code(),
            ActivationError::Signature(e) => e.code(),
            ActivationError::Load(e) => e.code(),
        }
    }
}

/// Whether the bundle's signature is checked.
pub enum Trust<'a> {
    /// The inline bundle: it comes from the configuration, as the keys do.
    Configured,
    /// A bundle from the service: verified as OPA verifies (`None`: no `signing`, so a signed
    /// bundle is refused and an unsigned one accepted).
    Verify(Option<&'a Verification>),
}

/// Reads, verifies and loads a bundle `.tar.gz` for the decision rule at `path`.
pub fn load(
    targz: &[u8],
    path: &DecisionPath,
    limits: &Limits,
    trust: Trust<'_>,
    logs: Option<&DecisionLogs>,
) -> Result<Policy, ActivationError> {
    let (files, names) = archive::read_targz_named(targz, limits)?;
    if let Trust::Verify(verification) = trust {
        signature::verify(&files, verification)?;
    }
    let bundle = Bundle::assemble(files, &Layout::Archive(names), RegoVersion::V1)?;
    let mut policy = Policy::load(&bundle, path)?;
    if let Some(logs) = logs {
        policy.set_log_rules(LogRules::load(
            &bundle,
            &logs.mask_decision,
            &logs.drop_decision,
        )?);
    }
    Ok(policy)
}
