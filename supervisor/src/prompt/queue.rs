//! The questions waiting for the person, one shown at a time.
//!
//! Pure bookkeeping, with time passed in, so the rules are tested without a
//! terminal or a clock: identical questions (same path and access, or the
//! same host and port) share
//! one place in the queue and one answer; a new question is refused when
//! too many are already waiting or too many were put in the last minute.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What makes two questions the same question.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A file, for reading or for writing too.
    File { path: PathBuf, write: bool },
    /// A connection through the hosts mode's proxy: `host:port` as
    /// [`policies::Host`] writes it (`example.com:443`, `[::1]:80`).
    Host { target: String },
}

/// Bounds on what a program can put before the person.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Distinct questions waiting at once (the one shown included).
    pub pending: usize,
    /// Distinct questions put within any minute.
    pub per_minute: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pending: 16,
            per_minute: 30,
        }
    }
}

/// Why a question was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    TooManyPending,
    TooManyPerMinute,
}

impl Refused {
    pub fn describe(self, limits: &Limits) -> String {
        match self {
            Refused::TooManyPending => format!(
                "rate limit: {} questions already wait for the person",
                limits.pending
            ),
            Refused::TooManyPerMinute => format!(
                "rate limit: more than {} questions in a minute",
                limits.per_minute
            ),
        }
    }
}

/// One question and everyone waiting for its answer.
#[derive(Debug)]
pub struct Item<Q, W> {
    pub id: u64,
    pub key: Key,
    pub question: Q,
    pub waiters: Vec<W>,
}

#[derive(Debug)]
pub struct Queue<Q, W> {
    items: VecDeque<Item<Q, W>>,
    /// The question on screen, if any (always the front item).
    shown: Option<u64>,
    next_id: u64,
    /// When each recent distinct question was put.
    recent: VecDeque<Instant>,
    limits: Limits,
}

/// What became of a question put to the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    /// A new place in the queue.
    New(u64),
    /// An identical question was already waiting: same answer.
    Joined(u64),
}

impl<Q, W> Queue<Q, W> {
    pub fn new(limits: Limits) -> Self {
        Queue {
            items: VecDeque::new(),
            shown: None,
            next_id: 1,
            recent: VecDeque::new(),
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Queues `waiter` for the answer to `key`; gives `waiter` back when
    /// the question is refused.
    pub fn put(
        &mut self,
        key: Key,
        question: Q,
        waiter: W,
        now: Instant,
    ) -> Result<Put, (W, Refused)> {
        if let Some(item) = self.items.iter_mut().find(|i| i.key == key) {
            item.waiters.push(waiter);
            return Ok(Put::Joined(item.id));
        }
        if self.items.len() >= self.limits.pending {
            return Err((waiter, Refused::TooManyPending));
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.limits.per_minute {
            return Err((waiter, Refused::TooManyPerMinute));
        }
        self.recent.push_back(now);
        let id = self.next_id;
        self.next_id += 1;
        self.items.push_back(Item {
            id,
            key,
            question,
            waiters: vec![waiter],
        });
        Ok(Put::New(id))
    }

    /// The question to show: the one on screen, or else the oldest, which
    /// is then on screen until answered.
    pub fn show_next(&mut self) -> Option<&Item<Q, W>> {
        let front = self.items.front()?;
        self.shown = Some(front.id);
        self.items.front()
    }

    pub fn get(&self, id: u64) -> Option<&Item<Q, W>> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Takes the question `id` out with its waiters.
    pub fn take(&mut self, id: u64) -> Option<Item<Q, W>> {
        let at = self.items.iter().position(|i| i.id == id)?;
        if self.shown == Some(id) {
            self.shown = None;
        }
        self.items.remove(at)
    }

    /// Takes out every question not on screen for which `answered` says so.
    pub fn take_where(&mut self, mut answered: impl FnMut(&Key) -> bool) -> Vec<Item<Q, W>> {
        let shown = self.shown;
        let (taken, kept) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|i| Some(i.id) != shown && answered(&i.key));
        self.items = kept;
        taken.into()
    }

    /// Takes out everything (no one will answer any more).
    pub fn take_all(&mut self) -> Vec<Item<Q, W>> {
        self.shown = None;
        self.items.drain(..).collect()
    }

    /// Distinct questions waiting behind the one on screen.
    pub fn behind(&self) -> usize {
        self.items.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> Key {
        Key::File {
            path: PathBuf::from(p),
            write: false,
        }
    }

    fn queue(pending: usize, per_minute: usize) -> Queue<(), u32> {
        Queue::new(Limits {
            pending,
            per_minute,
        })
    }

    #[test]
    fn identical_questions_share_one_place() {
        let mut q = queue(4, 10);
        let now = Instant::now();
        assert_eq!(q.put(key("/a"), (), 1, now).unwrap(), Put::New(1));
        assert_eq!(q.put(key("/b"), (), 2, now).unwrap(), Put::New(2));
        assert_eq!(q.put(key("/a"), (), 3, now).unwrap(), Put::Joined(1));
        let write = Key::File {
            path: PathBuf::from("/a"),
            write: true,
        };
        assert_eq!(q.put(write, (), 4, now).unwrap(), Put::New(3));
        let host = Key::Host {
            target: "/a".into(),
        };
        assert_eq!(q.put(host, (), 5, now).unwrap(), Put::New(4));
        assert_eq!(q.show_next().unwrap().id, 1);
        assert_eq!(q.behind(), 3);
        let item = q.take(1).unwrap();
        assert_eq!(item.waiters, vec![1, 3]);
        assert_eq!(q.show_next().unwrap().id, 2);
    }

    #[test]
    fn too_many_waiting_are_refused_until_one_is_answered() {
        let mut q = queue(2, 100);
        let now = Instant::now();
        q.put(key("/a"), (), 1, now).unwrap();
        q.put(key("/b"), (), 2, now).unwrap();
        assert_eq!(
            q.put(key("/c"), (), 3, now),
            Err((3, Refused::TooManyPending))
        );
        // Joining a waiting question is not a new question.
        assert_eq!(q.put(key("/b"), (), 4, now).unwrap(), Put::Joined(2));
        q.take(1);
        assert_eq!(q.put(key("/c"), (), 5, now).unwrap(), Put::New(3));
    }

    #[test]
    fn too_many_in_a_minute_are_refused_until_the_minute_passes() {
        let mut q = queue(100, 3);
        let t0 = Instant::now();
        for (i, p) in ["/a", "/b", "/c"].into_iter().enumerate() {
            let id = match q
                .put(key(p), (), 0, t0 + Duration::from_secs(i as u64))
                .unwrap()
            {
                Put::New(id) => id,
                other => panic!("{other:?}"),
            };
            q.take(id);
        }
        let refused = q.put(key("/d"), (), 9, t0 + Duration::from_secs(59));
        assert_eq!(refused, Err((9, Refused::TooManyPerMinute)));
        assert!(q
            .put(key("/d"), (), 9, t0 + Duration::from_secs(60))
            .is_ok());
    }

    #[test]
    fn answered_questions_leave_but_never_the_one_on_screen() {
        let mut q = queue(10, 10);
        let now = Instant::now();
        for p in ["/d/1", "/d/2", "/e/3"] {
            q.put(key(p), (), 0, now).unwrap();
        }
        q.show_next();
        let taken = q.take_where(|k| matches!(k, Key::File { path, .. } if path.starts_with("/d")));
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].key, key("/d/2"));
        assert_eq!(q.behind(), 1);
        assert_eq!(q.take_all().len(), 2);
        assert!(q.show_next().is_none());
    }
}
