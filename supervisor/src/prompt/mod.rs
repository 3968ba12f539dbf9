//! Approval prompts: the questions `ask` rules put to the person at the
//! terminal, one at a time.
//!
//! The broker's request tasks call [`Prompter::ask`] and await the answer;
//! nothing else waits for it, so requests decided by rule are served
//! meanwhile. The terminal relay ([`crate::tty`]) shows the questions: it is
//! woken through a pipe ([`Prompter::wake_fd`]) when the queue changes, takes the oldest
//! question ([`Prompter::next`]), draws it, and hands back the key pressed
//! or the timeout ([`Prompter::answer`]).
//!
//! A question is about a file (the broker's `ask` rules) or about a host and
//! port (the hosts mode's proxy, `ask_hosts`): same queue, same choices but
//! "this directory", same memory and overlay.
//!
//! Before a question joins the queue: an identical one already waiting
//! (same path, same access; same host and port) is joined and shares its answer; the answers
//! remembered for the session ([`memory`]) answer it at once; too many
//! waiting or too many in a minute ([`queue::Limits`]) deny it at once (the
//! audit record says "rate-limit"). "Always" answers go to the overlay file
//! ([`overlay`]) for later sessions and to the session's memory for this one.

pub mod memory;
pub mod overlay;
pub mod queue;
pub mod render;

use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::approval::{Answer, HostQuestion, Question};
use crate::audit::By;
use crate::sys::io::Waker;
use memory::Memory;
use queue::{Key, Limits, Queue};
use render::{Choice, View};

/// How the prompts behave in one session.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a shown prompt waits for a key before it answers deny.
    pub timeout: Duration,
    pub limits: Limits,
    /// Where "always" answers are written (`None`: they are not offered).
    pub overlay_file: Option<PathBuf>,
    /// The answer once nobody can be asked any more (`--approve`).
    pub fallback_allow: bool,
}

/// What a queued question shows besides its key.
#[derive(Debug)]
struct Asked {
    pid: libc::pid_t,
    exe: Option<PathBuf>,
    rule: Option<String>,
    directory: PathBuf,
}

type Waiter = oneshot::Sender<Answer>;

struct State {
    queue: Queue<Asked, Waiter>,
    memory: Memory,
    /// No one will answer any more: the fallback answers.
    closed: bool,
}

pub struct Prompter {
    state: Mutex<State>,
    /// Written when the queue changes; the relay polls it.
    wake: Waker,
    settings: Settings,
}

impl Prompter {
    pub fn new(settings: Settings) -> io::Result<Prompter> {
        Ok(Prompter {
            state: Mutex::new(State {
                queue: Queue::new(settings.limits),
                memory: Memory::default(),
                closed: false,
            }),
            wake: Waker::new()?,
            settings,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every change is one call); keep answering.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Readable when the queue changed, until [`Prompter::woken`].
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake.fd()
    }

    /// The relay saw [`Prompter::wake_fd`] readable.
    pub fn woken(&self) {
        self.wake.clear();
    }

    fn fallback(&self) -> Answer {
        Answer::new(self.settings.fallback_allow, By::NonInteractiveDefault)
    }

    /// Asks the person (or answers from the session's memory, or refuses
    /// over the rate limit) and waits for the answer.
    pub async fn ask(&self, q: &Question<'_>) -> Answer {
        let key = Key::File {
            path: q.path.to_path_buf(),
            write: q.write,
        };
        let asked = Asked {
            pid: q.pid,
            exe: q.exe.map(Path::to_path_buf),
            rule: q.rule.clone(),
            directory: directory_of(q.path),
        };
        self.put(key, asked).await
    }

    /// Asks the person whether the program may connect to `host:port`
    /// (the hosts mode's proxy), as [`Prompter::ask`] does for files.
    pub async fn ask_host(&self, q: &HostQuestion<'_>) -> Answer {
        let key = Key::Host {
            target: format!("{}:{}", q.host, q.port),
        };
        let asked = Asked {
            pid: 0,
            exe: None,
            rule: q.rule.clone(),
            directory: PathBuf::new(),
        };
        self.put(key, asked).await
    }

    async fn put(&self, key: Key, asked: Asked) -> Answer {
        let rx = {
            let mut st = self.lock();
            if let Some(allow) = st.memory.lookup_key(&key) {
                return Answer::new(allow, By::Session);
            }
            if st.closed {
                return self.fallback();
            }
            let (tx, rx) = oneshot::channel();
            if let Err((_, why)) = st.queue.put(key, asked, tx, Instant::now()) {
                let mut answer = Answer::new(false, By::RateLimit);
                answer.note = Some(why.describe(st.queue.limits()));
                return answer;
            }
            rx
        };
        self.wake.wake();
        // The sender is dropped unanswered only if the prompter itself is.
        rx.await.unwrap_or_else(|_| self.fallback())
    }

    /// The question to show now (the one already on screen, or the oldest
    /// waiting), after answering those the session's memory covers.
    pub fn next(&self) -> Option<View> {
        let mut st = self.lock();
        sweep(&mut st);
        let behind = st.queue.behind();
        let item = st.queue.show_next()?;
        Some(self.view(item, behind))
    }

    /// The question `id` as it stands (more requests may have joined).
    pub fn refresh(&self, id: u64) -> Option<View> {
        let st = self.lock();
        let behind = st.queue.behind();
        st.queue.get(id).map(|item| self.view(item, behind))
    }

    fn view(&self, item: &queue::Item<Asked, Waiter>, behind: usize) -> View {
        let (path, write, host) = match &item.key {
            Key::File { path, write } => (path.clone(), *write, None),
            Key::Host { target } => (PathBuf::new(), false, Some(target.clone())),
        };
        // A host (its name checked, or an address) can always be written.
        let writable = host.is_some() || path.to_str().is_some();
        View {
            id: item.id,
            pid: item.question.pid,
            exe: item.question.exe.clone(),
            path,
            write,
            host,
            rule: item.question.rule.clone(),
            directory: item.question.directory.clone(),
            can_remember: self.settings.overlay_file.is_some() && writable,
            waiting: item.waiters.len(),
            behind,
            timeout_secs: self.settings.timeout.as_secs().max(1),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// Answers question `id` for everyone waiting on it, remembers what the
    /// choice says to remember, and answers the waiting questions that the
    /// memory now covers. Returns a note for the person (an "always" that
    /// could not be written down). `recorded` goes with the answer into the
    /// audit record (input discarded before the question could be answered).
    pub fn answer(&self, id: u64, choice: Choice, recorded: Option<&str>) -> Option<String> {
        let mut st = self.lock();
        let item = st.queue.take(id)?;
        let mut note = None;
        match &item.key {
            Key::File { path, write } => match choice {
                Choice::AllowSession => st.memory.allow(path, false, *write),
                Choice::AllowDirectory => st.memory.allow(&item.question.directory, true, *write),
                Choice::AllowAlways | Choice::DenyAlways => {
                    let allow = choice == Choice::AllowAlways;
                    if allow {
                        st.memory.allow(path, false, *write);
                    } else {
                        st.memory.deny(path);
                    }
                    if let Some(file) = &self.settings.overlay_file {
                        if let Err(e) = overlay::remember(file, path, *write, allow) {
                            tracing::error!("approvals overlay: {e:#}");
                            note = Some(format!("for this session only: {e:#}"));
                        }
                    }
                }
                Choice::AllowOnce | Choice::DenyOnce | Choice::Timeout => {}
            },
            Key::Host { target } => match choice {
                Choice::AllowSession => st.memory.host(target, true),
                Choice::AllowAlways | Choice::DenyAlways => {
                    let allow = choice == Choice::AllowAlways;
                    st.memory.host(target, allow);
                    if let Some(file) = &self.settings.overlay_file {
                        if let Err(e) = overlay::remember_host(file, target, allow) {
                            tracing::error!("approvals overlay: {e:#}");
                            note = Some(format!("for this session only: {e:#}"));
                        }
                    }
                }
                // No directory for a host (the keys never choose it).
                Choice::AllowDirectory | Choice::AllowOnce | Choice::DenyOnce | Choice::Timeout => {
                }
            },
        }
        let by = if choice == Choice::Timeout {
            By::Timeout
        } else {
            By::Person
        };
        for waiter in item.waiters {
            let mut answer = Answer::new(choice.allows(), by);
            answer.note = recorded.map(str::to_owned);
            let _ = waiter.send(answer);
        }
        sweep(&mut st);
        note
    }

    /// Nobody will answer any more (the terminal is gone or the session
    /// ends): what waits and what comes gets the fallback answer.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        for item in st.queue.take_all() {
            for waiter in item.waiters {
                let _ = waiter.send(self.fallback());
            }
        }
    }
}

/// Answers the waiting questions (not the one on screen) that the session's
/// memory covers.
fn sweep(st: &mut State) {
    let State { queue, memory, .. } = st;
    for item in queue.take_where(|k| memory.lookup_key(k).is_some()) {
        let allow = memory.lookup_key(&item.key) == Some(true);
        for waiter in item.waiters {
            let _ = waiter.send(Answer::new(allow, By::Session));
        }
    }
}

/// The directory "allow this directory" means: the path itself if it is
/// one, else its parent.
fn directory_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.to_path_buf();
    }
    path.parent().unwrap_or(Path::new("/")).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompter(limits: Limits) -> Prompter {
        Prompter::new(Settings {
            timeout: Duration::from_secs(60),
            limits,
            overlay_file: None,
            fallback_allow: false,
        })
        .unwrap()
    }

    fn question(path: &Path) -> Question<'_> {
        Question {
            pid: 7,
            exe: None,
            path,
            write: false,
            rule: Some("ask \"/\"".into()),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn identical_questions_get_one_prompt_and_one_answer() {
        let p = prompter(Limits::default());
        let rt = runtime();
        let path = Path::new("/h/a.txt");
        let questions: Vec<_> = (0..3).map(|_| question(path)).collect();
        let mut asks: Vec<_> = questions.iter().map(|q| Box::pin(p.ask(q))).collect();
        rt.block_on(async {
            // Let every ask reach the queue.
            for a in &mut asks {
                assert!(futures_poll(a).is_none());
            }
        });
        let view = p.next().unwrap();
        assert_eq!(view.waiting, 3);
        assert_eq!(p.answer(view.id, Choice::AllowOnce, None), None);
        for a in asks {
            let answer = rt.block_on(a);
            assert!(answer.allow);
            assert_eq!(answer.by, By::Person);
        }
        assert!(p.next().is_none());
    }

    #[test]
    fn a_session_answer_answers_the_queued_questions_it_covers() {
        let p = prompter(Limits::default());
        let rt = runtime();
        let (a, b, c) = (Path::new("/d/a"), Path::new("/d/b"), Path::new("/e/c"));
        let (qa, qb, qc) = (question(a), question(b), question(c));
        let mut fa = Box::pin(p.ask(&qa));
        let mut fb = Box::pin(p.ask(&qb));
        let mut fc = Box::pin(p.ask(&qc));
        rt.block_on(async {
            assert!(futures_poll(&mut fa).is_none());
            assert!(futures_poll(&mut fb).is_none());
            assert!(futures_poll(&mut fc).is_none());
        });
        let view = p.next().unwrap();
        assert_eq!((view.path.as_path(), view.behind), (a, 2));
        p.answer(view.id, Choice::AllowDirectory, None);
        assert_eq!(rt.block_on(fa).by, By::Person);
        let b_answer = rt.block_on(fb);
        assert!(b_answer.allow);
        assert_eq!(b_answer.by, By::Session);
        let view = p.next().unwrap();
        assert_eq!(view.path, c);
        p.answer(view.id, Choice::Timeout, None);
        let c_answer = rt.block_on(fc);
        assert!(!c_answer.allow);
        assert_eq!(c_answer.by, By::Timeout);
        // Later: from memory, no prompt.
        let again = rt.block_on(p.ask(&question(Path::new("/d/z"))));
        assert_eq!((again.allow, again.by), (true, By::Session));
    }

    #[test]
    fn over_the_limit_is_denied_at_once_and_closing_answers_the_rest() {
        let p = prompter(Limits {
            pending: 1,
            per_minute: 10,
        });
        let rt = runtime();
        let q1 = question(Path::new("/a"));
        let mut first = Box::pin(p.ask(&q1));
        rt.block_on(async { assert!(futures_poll(&mut first).is_none()) });
        let refused = rt.block_on(p.ask(&question(Path::new("/b"))));
        assert_eq!((refused.allow, refused.by), (false, By::RateLimit));
        assert!(refused.note.unwrap().contains("rate limit"));
        p.close();
        let closed = rt.block_on(first);
        assert_eq!(
            (closed.allow, closed.by),
            (false, By::NonInteractiveDefault)
        );
        let after = rt.block_on(p.ask(&question(Path::new("/c"))));
        assert_eq!(after.by, By::NonInteractiveDefault);
    }

    /// Polls a future once; `Some` if it finished.
    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
