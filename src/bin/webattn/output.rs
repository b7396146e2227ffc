//! Writing `run`'s output file without surprises.
//!
//! - The output is never the input file (same device and inode, so also through a symlink or a
//!   hard link, or the same canonical path) unless `--in-place` is given.
//! - A symlink is followed: its target is written, the link stays.
//! - An existing file that is not a regular file (a character device such as `/dev/null` or
//!   `/dev/full`, a FIFO) is opened and written directly; write errors (ENOSPC) are errors.
//! - A regular file is replaced atomically: the data goes to a temporary file in the target's
//!   directory, which gets the old file's permissions (and owner, where allowed) and is then
//!   renamed over it. Other hard links to the old file keep the old data.
//! - A new file is created like any Unix tool creates one: mode 0666 less the umask.
//! - No temporary file is left behind on an error.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Fails if `output` is the file `input` (unless `in_place`) or a directory.
pub fn check_target(input: &Path, output: &Path, in_place: bool) -> Result<(), String> {
    let in_meta = fs::metadata(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    let out_meta = match fs::metadata(output) {
        Ok(m) => m,
        // Nothing there (or a dangling symlink): it cannot be the input, which exists. Its
        // directory must exist, though (fail before the work, not after).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dest = resolve(output)?;
            let dir = match dest.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            return match fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(()),
                _ => Err(format!(
                    "{}: the directory {} does not exist",
                    output.display(),
                    dir.display()
                )),
            };
        }
        Err(e) => return Err(format!("{}: {e}", output.display())),
    };
    if out_meta.is_dir() {
        return Err(format!("{} is a directory", output.display()));
    }
    let same_canonical = match (fs::canonicalize(input), fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if (same_inode(&in_meta, &out_meta) || same_canonical) && !in_place {
        return Err(format!(
            "the output {} is the input file {}: refusing to overwrite the input \
             (pass --in-place to replace it with the output)",
            output.display(),
            input.display()
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &Metadata, _: &Metadata) -> bool {
    false
}

/// Follows `path` through symlinks (also dangling ones) to the path that is written.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(format!(
        "{}: too many levels of symbolic links",
        path.display()
    ))
}

/// Writes `bytes` to `path` as the module doc says.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dest = resolve(path)?;
    let shown = if dest == path {
        path.display().to_string()
    } else {
        format!("{} (-> {})", path.display(), dest.display())
    };
    let err = |e: io::Error| format!("writing {shown}: {e}");
    match fs::metadata(&dest) {
        Ok(m) if m.is_dir() => Err(format!("{shown} is a directory")),
        Ok(m) if m.is_file() => replace(&dest, bytes, Some(&m)).map_err(err),
        // A device, FIFO or socket: write to it, never replace it.
        Ok(_) => {
            let mut f = OpenOptions::new().write(true).open(&dest).map_err(err)?;
            f.write_all(bytes).and_then(|()| f.flush()).map_err(err)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => replace(&dest, bytes, None).map_err(err),
        Err(e) => Err(err(e)),
    }
}

/// Removes the temporary file unless the rename happened.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Writes a temporary file next to `dest` and renames it over `dest`; `old` is the file
/// replaced (its permissions and owner are kept), `None` for a new file.
fn replace(dest: &Path, bytes: &[u8], old: Option<&Metadata>) -> io::Result<()> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let (tmp, mut file) = create_temp(&dir, &name)?;
    let mut guard = TempGuard(Some(tmp.clone()));
    file.write_all(bytes)?;
    if let Some(m) = old {
        keep_owner(&file, m);
        file.set_permissions(m.permissions())?;
    }
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dest)?;
    guard.0 = None;
    Ok(())
}

/// A new file in `dir`, created with the default mode (0666 less the umask).
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    for n in 0..1000 {
        let p = dir.join(format!(".{name}.webattn-{pid}-{n}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name",
    ))
}

/// Gives the replacement the old file's owner and group where allowed (root); elsewhere the
/// file keeps ours, as any editor's atomic save does.
#[cfg(unix)]
fn keep_owner(file: &File, old: &Metadata) {
    use std::os::unix::fs::MetadataExt;
    let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
}

#[cfg(not(unix))]
fn keep_owner(_: &File, _: &Metadata) {}
