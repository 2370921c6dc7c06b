//! Helpers for the `hostile_*` tests: the real binary run as a child that cannot run away
//! (an address-space limit set before it starts, a deadline after which it is killed, its
//! peak memory read from the kernel), small hostile servers on loopback, and a tmpfs for
//! the full-disk case.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The address space a child may map: enough for massup (a few runtime threads, SQLite's
/// cache, a 16 MiB answer), far below what a process reading without end would reach.
pub const ADDRESS_SPACE: u64 = 1536 << 20;

/// One finished (or killed) run of the binary.
pub struct Bounded {
    pub command: String,
    pub code: Option<i32>,
    /// The signal that ended it, if one did (SIGKILL when the deadline passed).
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// Peak resident memory, bytes (the kernel's `ru_maxrss` of this child alone).
    pub max_rss: u64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Bounded {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// What to print when an assertion about this run fails.
    pub fn report(&self) -> String {
        format!(
            "$ {}\nexit {:?} signal {:?} timed out {} after {:?}, peak RSS {} MB\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.code,
            self.signal,
            self.timed_out,
            self.elapsed,
            self.max_rss >> 20,
            self.stdout(),
            self.stderr()
        )
    }

    pub fn expect_code(&self, code: i32) -> &Bounded {
        assert_eq!(self.code, Some(code), "{}", self.report());
        self
    }

    /// Asserts exit 0 and hands the run back.
    pub fn expect_ok(self) -> Bounded {
        self.expect_code(0);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value: {e}\n{}", self.report()))
    }
}

/// A temp folder for one test, and the binary run in it isolated from the machine's
/// configuration, credentials and state folder.
pub struct Dir {
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Dir {
    pub fn new() -> Dir {
        let temp = tempfile::tempdir().expect("create a temp folder");
        Dir {
            root: temp.path().to_path_buf(),
            _temp: Some(temp),
        }
    }

    /// A folder that exists already (a tmpfs), not removed after the test.
    pub fn at(root: &Path) -> Dir {
        Dir {
            root: root.to_path_buf(),
            _temp: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn db(&self) -> PathBuf {
        self.root.join("massup.db")
    }

    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    /// `massup --db <db> <args>` with `env` set, bounded by `deadline`.
    pub fn massup(&self, args: &[&str], env: &[(&str, &str)], deadline: Duration) -> Bounded {
        let mut command = Command::new(env!("CARGO_BIN_EXE_massup"));
        command
            .current_dir(&self.root)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.root)
            .env("XDG_CONFIG_HOME", self.root.join(".config"))
            .env("MASSUP_STATE_DIR", self.root.join("state"))
            .arg("--db")
            .arg(self.db())
            .args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let shown = format!("massup {}", args.join(" "));
        run_bounded(command, shown, ADDRESS_SPACE, deadline)
    }
}

/// Runs `command` with an address-space limit of `address_space` bytes, killed at
/// `deadline`; its output goes to files (no pipe to fill and block it).
pub fn run_bounded(
    mut command: Command,
    shown: String,
    address_space: u64,
    deadline: Duration,
) -> Bounded {
    use std::os::unix::process::CommandExt;
    let out = tempfile::tempfile().expect("a temp file for stdout");
    let err = tempfile::tempfile().expect("a temp file for stderr");
    command
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: address_space,
                rlim_max: address_space,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let child = command.spawn().expect("start the massup binary");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value to be filled by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // SAFETY: pid is our child, not yet reaped; status and usage are valid out-params.
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if waited == pid {
            break;
        }
        assert!(waited == 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > deadline && !timed_out {
            timed_out = true;
            // SAFETY: signalling our own child, still unreaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    // The child is reaped by wait4 above; `child` must not wait for it again.
    std::mem::forget(child);
    let read = |mut file: std::fs::File| {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut bytes).unwrap();
        bytes
    };
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Bounded {
        command: shown,
        code,
        signal,
        timed_out,
        elapsed,
        // Linux reports kilobytes.
        max_rss: usage.ru_maxrss.max(0) as u64 * 1024,
        stdout: read(out),
        stderr: read(err),
    }
}

/// Runs a blocking `run` (a child's life) off the test's async runtime, so that the
/// servers in the test's process keep serving meanwhile.
pub async fn off_runtime<T: Send + 'static>(run: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(run)
        .await
        .expect("the child runner")
}

/// Serves `app` on 127.0.0.1, a free port; returns its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The shipped Leads metadata.
pub fn leads_fields() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/fields/Leads.json")
}

/// `id,Lead_Status` for the given record ids (one field: each record in one chunk).
pub fn status_csv(ids: &[String]) -> String {
    let mut text = String::from("id,Lead_Status\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!("{id},{}\n", ["Contacted", "Junk Lead"][i % 2]));
    }
    text
}

/// Bytes of every file of the database (the main file, its WAL and shared memory).
pub fn database_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", db.display())) {
            all.extend_from_slice(&bytes);
        }
    }
    all
}

/// Checkpoints the WAL into the main file and truncates it, so that the main file alone
/// holds every page (for tests that damage pages on disk).
pub fn checkpoint(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// A small tmpfs (needs root; `None`, with a note, without it).
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("massup-hostile-tmpfs")
            .tempdir()
            .ok()?
            .keep();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            Some(Tmpfs(dir))
        } else {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }

    pub fn free_bytes(&self) -> u64 {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(self.0.as_os_str().as_bytes()).unwrap();
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid NUL-terminated path and a zeroed statvfs to fill.
        assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) }, 0);
        stat.f_bavail as u64 * stat.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// [`Dir::massup`] off the test's async runtime, so that the servers of the test keep
/// serving while the child runs.
pub async fn massup_in(
    dir: &std::sync::Arc<Dir>,
    args: &[&str],
    env: &[(&str, &str)],
    deadline: Duration,
) -> Bounded {
    let dir = dir.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    off_runtime(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        dir.massup(&args, &env, deadline)
    })
    .await
}
