//! A component file, compiled the first time a server needs it and then
//! shared by every server of its type.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{OnceCell, oneshot};

use crate::component::Component;
use crate::error::{Error, ErrorKind};

/// A component's file and, once it was needed, the component compiled
/// from it. Compiling a large component takes a while, so it happens on a
/// thread of its own the first time an instance is started, never when a
/// server is only described or checked.
pub struct ComponentFile {
    name: String,
    path: PathBuf,
    fuel: bool,
    compiled: OnceCell<Result<Arc<Component>, Error>>,
}

impl std::fmt::Debug for ComponentFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentFile")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("compiled", &self.compiled.initialized())
            .finish()
    }
}

impl From<Component> for ComponentFile {
    /// A component already compiled.
    fn from(component: Component) -> Self {
        Self {
            name: component.name().to_owned(),
            path: component.path().to_path_buf(),
            fuel: component.fuel(),
            compiled: OnceCell::new_with(Some(Ok(Arc::new(component)))),
        }
    }
}

impl ComponentFile {
    /// The component at `path`, called `name` in messages, to be
    /// compiled to meter fuel or not (see [`Component::load`]); nothing is
    /// read yet.
    #[must_use]
    pub fn new(name: &str, path: &Path, fuel: bool) -> Self {
        Self {
            name: name.to_owned(),
            path: path.to_path_buf(),
            fuel,
            compiled: OnceCell::new(),
        }
    }

    /// Its name in messages.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is compiled to meter fuel.
    #[must_use]
    pub fn fuel(&self) -> bool {
        self.fuel
    }

    /// A quick look at the file, without compiling it: it can be read and
    /// starts as a component does (the binary format's header with the
    /// component layer, or the text format).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unreadable`] when the file cannot be read,
    /// [`ErrorKind::Invalid`] when it is not a component: a core module,
    /// another binary format version, or not WebAssembly at all.
    pub fn check(&self) -> Result<(), Error> {
        let unreadable = |e: std::io::Error| {
            Error::new(
                ErrorKind::Unreadable,
                &self.path,
                format!("cannot be read: {e}"),
            )
        };
        let mut head = Vec::with_capacity(64);
        std::fs::File::open(&self.path)
            .and_then(|file| file.take(64).read_to_end(&mut head))
            .map_err(unreadable)?;
        header_problem(&head).map_or(Ok(()), |problem| {
            Err(Error::new(ErrorKind::Invalid, &self.path, problem))
        })
    }

    /// The compiled component, compiling it on a thread of its own the
    /// first time; later calls, from any server, share that one.
    ///
    /// # Errors
    ///
    /// As [`Component::load`]; a failure is kept too, so a broken file is
    /// not compiled again for every server (a new file is a new plugin).
    pub async fn compiled(&self) -> Result<Arc<Component>, Error> {
        self.compiled
            .get_or_init(|| async {
                let (done, result) = oneshot::channel();
                let (name, path, fuel) = (self.name.clone(), self.path.clone(), self.fuel);
                let spawned = std::thread::Builder::new()
                    .name("wasm-compile".to_owned())
                    .spawn(move || {
                        let _ = done.send(Component::load(&name, &path, fuel).map(Arc::new));
                    });
                if let Err(e) = spawned {
                    return Err(Error::new(
                        ErrorKind::Engine,
                        &self.path,
                        format!("no thread to compile it on: {e}"),
                    ));
                }
                result.await.unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Engine,
                        &self.path,
                        "compiling it stopped half-way",
                    ))
                })
            })
            .await
            .clone()
    }
}

/// What is wrong with a file that starts with `head`, if anything.
fn header_problem(head: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    const MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    if let Some(version) = head.strip_prefix(MAGIC) {
        return match version.get(..4) {
            Some(v) if v == COMPONENT => None,
            Some(v) if v == MODULE => Some(
                "a core WebAssembly module, not a component: build it as a component of the world in wit/plugin.wit"
                    .to_owned(),
            ),
            _ => Some("a WebAssembly binary of a format version this manager cannot run".to_owned()),
        };
    }
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start();
    if text.starts_with('(') || text.starts_with(";;") {
        // The text format: whether it is a component the compiler says.
        return None;
    }
    Some("not a WebAssembly component: it does not start with the `\\0asm` header".to_owned())
}

#[cfg(test)]
mod tests {
    use super::header_problem;

    #[test]
    fn headers_are_told_apart() {
        assert_eq!(header_problem(b"\0asm\x0d\x00\x01\x00rest"), None);
        assert_eq!(header_problem(b"  (component)"), None);
        assert_eq!(header_problem(b";; a comment\n(component)"), None);
        let module = header_problem(b"\0asm\x01\x00\x00\x00").unwrap_or_default();
        assert!(module.contains("core WebAssembly module"), "{module}");
        let future = header_problem(b"\0asm\x0e\x00\x01\x00").unwrap_or_default();
        assert!(future.contains("format version"), "{future}");
        let junk = header_problem(b"PK\x03\x04zip").unwrap_or_default();
        assert!(junk.contains("`\\0asm` header"), "{junk}");
        assert!(header_problem(b"").is_some());
    }
}
