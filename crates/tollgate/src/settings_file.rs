//! The daemon's settings file (`--accounting FILE`, default
//! `/etc/tollgate/accounting.toml`): read here, parsed and resolved
//! against the policy by the `settings` crate.

use crate::cli::history::SettingsArgs;
use crate::error::{Error, Result};
use policy::Loaded;
use settings::Settings;
use std::path::Path;

/// The file's settings alone, before the policy's `[billing]` and
/// `[overage]` are taken into account. A missing file at the default
/// place means the defaults; a missing file asked for by name is an error.
pub fn file_settings(args: &SettingsArgs) -> Result<Settings> {
    let (path, asked) = match &args.accounting {
        Some(p) => (p.clone(), true),
        None => (Path::new(settings::DEFAULT_PATH).to_path_buf(), false),
    };
    match crate::policy_file::read_bounded(&path, policy::POLICY_FILE_LIMIT) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|e| {
                Error::invalid(format!(
                    "{} is not UTF-8 text (first bad byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ))
            })?;
            Settings::parse(&path.display().to_string(), &text)
                .map_err(|e| Error::invalid(e.to_string()))
        }
        Err(crate::policy_file::ReadRefusal::Io(e))
            if e.kind() == std::io::ErrorKind::NotFound && !asked =>
        {
            Ok(Settings::defaults())
        }
        Err(e) => Err(Error::invalid(format!(
            "cannot read the accounting settings {}: {e}",
            path.display()
        ))
        .hint("docs/accounting.md describes the file; without --accounting the defaults apply")),
    }
}

/// The settings in force: the file's, with the policy's `[billing]` and
/// `[overage]` when `loaded` holds a valid policy.
pub fn resolve(file: Settings, loaded: Option<&Loaded>) -> Result<Settings> {
    Settings::resolve(file, loaded).map_err(|e| Error::invalid(e.to_string()))
}

/// [`file_settings`] then [`resolve`].
pub fn settings(args: &SettingsArgs, loaded: Option<&Loaded>) -> Result<Settings> {
    resolve(file_settings(args)?, loaded)
}
