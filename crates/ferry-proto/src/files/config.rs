//! What every file session of a server shares: the root, the partials
//! directory (when writable) and the access model.

use std::io;
use std::sync::Arc;

use super::partials::{PartialLimits, Partials};
use crate::access::Access;
use crate::root::Root;

/// Settings shared by every file session of a server.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The served directory.
    pub root: Arc<Root>,
    /// Where uploads in progress are kept; `None` for a read-only server
    /// (`put`, `mkdir` and `rm` are allowed only with it).
    pub partials: Option<Arc<Partials>>,
    /// Who may do what (accounts, rules); open to everyone by default.
    pub access: Arc<Access>,
}

impl FilesConfig {
    /// A server that only reads.
    pub fn read_only(root: Arc<Root>) -> FilesConfig {
        FilesConfig { root, partials: None, access: Arc::new(Access::open(false)) }
    }

    /// A server that also writes (`--allow-write`): opens, creating it if
    /// needed, the root's partials directory.
    pub fn writable(root: Arc<Root>, limits: PartialLimits) -> io::Result<FilesConfig> {
        let partials = Partials::open(&root, limits)?;
        Ok(FilesConfig { root, partials: Some(Arc::new(partials)), access: Arc::new(Access::open(true)) })
    }

    /// The same settings under `access` (accounts and rules).
    pub fn with_access(self, access: Arc<Access>) -> FilesConfig {
        FilesConfig { access, ..self }
    }

    /// [`FilesConfig::writable`] if `allow_write`, else read-only, with the
    /// default limits (for tests and examples).
    pub fn new(root: Arc<Root>, allow_write: bool) -> io::Result<FilesConfig> {
        if allow_write {
            FilesConfig::writable(root, PartialLimits::default())
        } else {
            Ok(FilesConfig::read_only(root))
        }
    }
}
