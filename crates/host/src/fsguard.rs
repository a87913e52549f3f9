//! Guards on the guest's file system calls that wasmtime-wasi does not make
//! itself.
//!
//! A stage's file calls run on its own thread
//! (`allow_blocking_current_thread`, for speed), so a call that blocks in
//! the kernel blocks the stage where neither the epoch deadline nor the
//! timeout can reach it. Opening a FIFO for reading blocks until a writer
//! appears, and a character device such as `/dev/zero` reads forever. A
//! workspace can hold either (a repository's build made them, or a granted
//! program did), so `open-at` refuses anything that is not a regular file,
//! a directory or a symlink to one, before wasmtime-wasi opens it.
//!
//! This is done by shadowing `wasi:filesystem/types.[method]descriptor.open-at`
//! in the linker with a wrapper that looks at the target's type through the
//! same directory handle (`cap-std`, so the look stays inside the preopen)
//! and then calls wasmtime-wasi's own implementation.
//!
//! Limit: the type is checked just before the open, not atomically with
//! it. A program the stage runs through `exec` could swap a regular file
//! for a FIFO in between; that program is itself bounded by the stage's
//! timeout and process containment (see docs/security.md).

use std::path::Path;

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::FsError;

use super::state::{DeniedCall, StageState};

/// The WASI filesystem interface wasmtime-wasi 48 defines (guests importing
/// any 0.2.x resolve to it).
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// What kind of file a path names, for the open check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
    /// A character device (`/dev/zero`, a tty).
    CharDevice,
    /// A block device.
    BlockDevice,
}

impl Special {
    fn describe(self) -> &'static str {
        match self {
            Special::Fifo => "a FIFO",
            Special::Socket => "a socket",
            Special::CharDevice => "a character device",
            Special::BlockDevice => "a block device",
        }
    }
}

/// The special file type of `path` under `dir`, `None` for regular files,
/// directories, and paths that do not exist (or cannot be looked at: the
/// open itself then reports the error).
pub fn special_file_at(dir: &std::fs::File, path: &str, follow: bool) -> Option<Special> {
    #[cfg(unix)]
    {
        use cap_std::fs::FileTypeExt;
        let handle = dir.try_clone().ok()?;
        let dir = cap_std::fs::Dir::from_std_file(handle);
        let meta = if follow {
            dir.metadata(Path::new(path))
        } else {
            dir.symlink_metadata(Path::new(path))
        }
        .ok()?;
        let ft = meta.file_type();
        if ft.is_fifo() {
            Some(Special::Fifo)
        } else if ft.is_socket() {
            Some(Special::Socket)
        } else if ft.is_char_device() {
            Some(Special::CharDevice)
        } else if ft.is_block_device() {
            Some(Special::BlockDevice)
        } else {
            None
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, path, follow);
        None
    }
}

/// Replace `open-at` in `linker` (which already has wasmtime-wasi's
/// filesystem) with the checked version.
pub fn add_to_linker(linker: &mut Linker<StageState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store,
         (fd, path_flags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                if let Ok(Descriptor::Dir(dir)) = state.table.get(&fd) {
                    let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
                    if let Some(kind) = special_file_at(&dir.dir, &path, follow) {
                        let shown = sluice_engine::report::escape_controls(&path).into_owned();
                        state.denials.push(
                            &state.log,
                            DeniedCall::File,
                            format!(
                                "refused to open `{shown}`: it is {}, not a regular file or directory (opening it could block the stage where its timeout cannot reach)",
                                kind.describe()
                            ),
                        );
                        return Ok((Err(ErrorCode::Access),));
                    }
                }
                let mut view = wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(state);
                let opened =
                    HostDescriptor::open_at(&mut view, fd, path_flags, path, oflags, flags).await;
                match opened {
                    Ok(new_fd) => Ok((Ok(new_fd),)),
                    Err(e) => to_result(e).map(|code| (Err(code),)),
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A filesystem error as the guest sees it, or the trap it really is.
fn to_result(e: FsError) -> wasmtime::Result<ErrorCode> {
    e.downcast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_recognised_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("file"), b"x").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let handle = std::fs::File::open(dir.path()).expect("open dir");
        assert_eq!(special_file_at(&handle, "file", true), None);
        assert_eq!(special_file_at(&handle, "sub", true), None);
        assert_eq!(special_file_at(&handle, "missing", true), None);
        #[cfg(unix)]
        {
            let made = std::process::Command::new("mkfifo")
                .arg(dir.path().join("pipe"))
                .status();
            if made.is_ok_and(|s| s.success()) {
                assert_eq!(special_file_at(&handle, "pipe", true), Some(Special::Fifo));
                std::os::unix::fs::symlink("pipe", dir.path().join("to-pipe")).expect("symlink");
                assert_eq!(
                    special_file_at(&handle, "to-pipe", true),
                    Some(Special::Fifo)
                );
                assert_eq!(special_file_at(&handle, "to-pipe", false), None);
            }
            // A symlink out of the directory is not followed (cap-std).
            std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).expect("symlink");
            assert_eq!(special_file_at(&handle, "zero", true), None);
        }
    }
}
