//! `kodad serve` from the repository's virtualenv on a free port, for the tests.
#![allow(dead_code)] // each test binary uses part of it
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub struct Server {
    pub address: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start() -> Server {
    let python = std::env::var("KODAD_PYTHON")
        .unwrap_or_else(|_| repository().join(".venv/bin/python").display().to_string());
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(&python)
        .args(["-m", "kodad", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start kodad ({python}): {e}"));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find("serving on ") {
            let address = line[at + 11..].split_whitespace().next().unwrap().to_string();
            std::thread::spawn(move || lines.for_each(drop));
            return Server { address, child, _data: data };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("kodad exited before serving");
}
