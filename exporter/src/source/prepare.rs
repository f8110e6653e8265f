//! Every source of a configuration prepared but not started — mappings resolved, self-metrics
//! registered, follower and journal settings built: what `serve` starts and `check-config`
//! checks, by the same code.

use std::path::Path;

use anyhow::Result;

use super::{api, file, journal, poll};
use crate::config::Config;
use crate::pipeline::Pipeline;

pub struct Sources {
    pub files: Vec<file::Prepared>,
    pub journals: Vec<journal::Prepared>,
    pub polls: Vec<poll::Prepared>,
}

impl Sources {
    pub fn len(&self) -> usize {
        self.files.len() + self.journals.len() + self.polls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The sources of `cfg`, registering their metrics in `p`; checkpoints go to `state_dir`.
pub fn prepare(cfg: &Config, state_dir: Option<&Path>, p: &mut Pipeline) -> Result<Sources> {
    let mut files = Vec::new();
    for f in &cfg.files {
        files.push(file::prepare(
            f,
            state_dir,
            cfg.max_line_bytes,
            &p.engine,
            &mut p.metrics,
        )?);
    }
    let mut journals = Vec::new();
    for j in &cfg.journals {
        journals.push(journal::prepare(
            j,
            state_dir,
            cfg.max_line_bytes,
            &p.engine,
            &mut p.metrics,
        )?);
    }
    let mut polls = Vec::new();
    for a in &cfg.apis {
        polls.push(api::prepare(cfg, a, &p.apis, &mut p.metrics)?);
    }
    Ok(Sources {
        files,
        journals,
        polls,
    })
}
