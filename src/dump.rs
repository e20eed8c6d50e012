//! [`TaskDump`]: every live task of an executor, with what it is doing, as a tree a person
//! reads when a program hangs, or as a list for tools.
//!
//! A dump is taken from the executor's registry of live tasks (`task/owner.rs`): each
//! shard is locked in turn while its tasks' headers are read, so a dump is not one instant
//! but a walk, and tasks keep running meanwhile. Each task is read in one go (its state
//! word, its poll count and its poll stamp: see `task/snapshot.rs` for what those cost the
//! executor, and how coarse the times are).
//!
//! The tree: a task sits under the task that spawned it while that one is alive, or at the
//! top; a group's members sit under one `group#N` line below their spawner. Members of one
//! group spawned by different tasks appear under each of those tasks.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::handle::{Flavor, Handle};
use crate::task::{GroupId, TaskId, TaskSnapshot, TaskState};

/// Every live task of an executor, from [`Executor::dump`](crate::Executor::dump),
/// [`LocalExecutor::dump`](crate::LocalExecutor::dump) or [`Handle::dump`].
///
/// `Display` prints the tree of tasks by parent and group, one line per task with its id,
/// name, state, poll count and spawn site, headed by the counts:
///
/// ```text
/// 4 live tasks on an Executor: 1 running, 1 queued, 2 idle
/// task 'server' #1: running on worker 0 for 3.0s, 12 polls, spawned at src/main.rs:20:5
/// ├── task 'ping' #2: idle for 3.0s, 1 poll, spawned at src/main.rs:24:9
/// └── group#1
///     ├── task 'a' #3: idle for 2.9s, 1 poll, spawned at src/main.rs:30:9
///     └── task 'b' #4: queued, 0 polls, spawned at src/main.rs:31:9
/// ```
///
/// Iterating yields one [`TaskSnapshot`] per live task, in id (spawn) order. Times come
/// from a coarse clock that the executor reads every few dozen polls, not per poll, so
/// "running for" and "idle for" can be longer than the truth by that many short polls'
/// worth of time, never shorter.
///
/// # Examples
///
/// ```
/// use warden::TaskState;
///
/// let ex = warden::LocalExecutor::new();
/// let _waiting = ex.spawn_named("waiting", std::future::pending::<()>());
/// ex.run_until_idle();
/// let _queued = ex.spawn_named("queued", async {});
///
/// let dump = ex.dump();
/// let states: Vec<_> = dump.iter().map(|t| (t.name().unwrap(), t.state())).collect();
/// assert!(matches!(states[0], ("waiting", TaskState::Idle { .. })));
/// assert_eq!(states[1], ("queued", TaskState::Queued));
/// assert!(dump.to_string().contains("task 'waiting'"));
/// ```
#[derive(Debug, Clone)]
pub struct TaskDump {
    /// In id order.
    tasks: Vec<TaskSnapshot>,
    complete: bool,
    pool: bool,
}

impl TaskDump {
    /// How many live tasks it lists.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// `true` if no task was live.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks, in id (spawn) order.
    pub fn iter(&self) -> std::slice::Iter<'_, TaskSnapshot> {
        self.tasks.iter()
    }

    /// The task with this id, if it was live.
    pub fn get(&self, id: TaskId) -> Option<&TaskSnapshot> {
        let index = self.tasks.binary_search_by_key(&id, |t| t.id()).ok()?;
        Some(&self.tasks[index])
    }

    /// `false` for a [`LocalExecutor`](crate::LocalExecutor)'s dump taken through a
    /// [`Handle`] on another thread: tasks spawned on the executor's own thread are only
    /// visible there, and are left out.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

impl IntoIterator for TaskDump {
    type Item = TaskSnapshot;
    type IntoIter = std::vec::IntoIter<TaskSnapshot>;

    fn into_iter(self) -> Self::IntoIter {
        self.tasks.into_iter()
    }
}

impl<'a> IntoIterator for &'a TaskDump {
    type Item = &'a TaskSnapshot;
    type IntoIter = std::slice::Iter<'a, TaskSnapshot>;

    fn into_iter(self) -> Self::IntoIter {
        self.tasks.iter()
    }
}

impl Handle {
    /// Every live task of this handle's executor, with what it is doing; see [`TaskDump`].
    /// From any thread, while tasks run.
    ///
    /// For a [`LocalExecutor`](crate::LocalExecutor), only its own thread sees the tasks
    /// spawned there: from another thread, the dump lists the tasks spawned through
    /// handles on other threads and says the rest are missing
    /// ([`TaskDump::is_complete`] is `false`).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::Builder::new().worker_threads(2).build();
    /// let task = ex.spawn_named("forever", std::future::pending::<()>());
    /// let handle = ex.handle();
    /// let dump = std::thread::spawn(move || handle.dump()).join().unwrap();
    /// assert_eq!(dump.get(task.id()).unwrap().name(), Some("forever"));
    /// ```
    pub fn dump(&self) -> TaskDump {
        let live = self.schedule_ref().owner().snapshot();
        TaskDump {
            tasks: live.tasks,
            complete: live.complete,
            pool: matches!(self.flavor, Flavor::Pool(_)),
        }
    }
}

impl crate::Executor {
    /// Every live task, with what it is doing; see [`TaskDump`]. Callable while tasks run;
    /// [`Handle::dump`] does the same from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = warden::Builder::new().worker_threads(2).build();
    /// let _task = ex.spawn_named("forever", std::future::pending::<()>());
    /// println!("{}", ex.dump());
    /// ```
    pub fn dump(&self) -> TaskDump {
        self.handle().dump()
    }
}

impl crate::LocalExecutor {
    /// Every live task, with what it is doing; see [`TaskDump`]. Tasks run only on this
    /// executor's own thread, so this is where a complete dump comes from: call it from
    /// the root future of `block_on` (a timeout that fires, say), from a task, or between
    /// `try_tick`s. ([`Handle::dump`] on another thread sees only the tasks spawned through
    /// handles there.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = warden::LocalExecutor::new();
    /// let stuck = ex.spawn_named("stuck", std::future::pending::<()>());
    /// let waited = ex.block_on(warden::timeout(Duration::from_millis(10), stuck));
    /// assert!(waited.is_err());
    /// assert_eq!(ex.dump().len(), 1);
    /// ```
    pub fn dump(&self) -> TaskDump {
        self.handle().dump()
    }
}

/// One entry of the tree: a task, or a group line with its members (indices into
/// `TaskDump::tasks`).
enum Node {
    Task(usize),
    Group(GroupId, Vec<usize>),
}

/// Indentation stops growing this deep, so that a long chain of live parents still prints
/// in reasonable width.
const MAX_DEPTH: usize = 32;

impl TaskDump {
    /// The entries under `parent` (`None`: the top): its children in id order, a group's
    /// members gathered under the group's line where the first of them would be.
    fn entries(
        &self,
        children: &HashMap<Option<TaskId>, Vec<usize>>,
        parent: Option<TaskId>,
    ) -> Vec<Node> {
        let Some(list) = children.get(&parent) else {
            return Vec::new();
        };
        let mut nodes = Vec::new();
        let mut groups: Vec<GroupId> = Vec::new();
        for &i in list {
            match self.tasks[i].group() {
                None => nodes.push(Node::Task(i)),
                Some(group) if !groups.contains(&group) => {
                    groups.push(group);
                    let members = list
                        .iter()
                        .copied()
                        .filter(|&j| self.tasks[j].group() == Some(group))
                        .collect();
                    nodes.push(Node::Group(group, members));
                }
                Some(_) => {}
            }
        }
        nodes
    }

    /// One task's line, after the tree's connector.
    fn task_line(&self, out: &mut String, task: &TaskSnapshot) {
        let _ = write!(out, "{}: ", task.info());
        match task.state() {
            TaskState::Queued => out.push_str("queued"),
            TaskState::Running { worker, for_ } if self.pool => {
                let _ = write!(out, "running on worker {worker} for {}", Human(for_));
            }
            TaskState::Running { for_, .. } => {
                let _ = write!(out, "running for {}", Human(for_));
            }
            TaskState::Idle { since } => {
                let _ = write!(out, "idle for {}", Human(since));
                if !task.has_waker() {
                    out.push_str(" with no waker (nothing can wake it)");
                }
            }
        }
        let polls = task.polls();
        let plural = if polls == 1 { "" } else { "s" };
        let _ = write!(
            out,
            ", {polls} poll{plural}, spawned at {}",
            task.spawned_at()
        );
        if let Some(parent) = task.parent() {
            if self.get(parent).is_none() {
                let _ = write!(out, ", by {parent} (ended)");
            }
        }
    }
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count =
            |want: fn(&TaskState) -> bool| self.tasks.iter().filter(|t| want(&t.state())).count();
        let running = count(|s| matches!(s, TaskState::Running { .. }));
        let queued = count(|s| matches!(s, TaskState::Queued));
        let idle = count(|s| matches!(s, TaskState::Idle { .. }));
        let n = self.tasks.len();
        writeln!(
            f,
            "{n} live task{} on {}: {running} running, {queued} queued, {idle} idle",
            if n == 1 { "" } else { "s" },
            if self.pool {
                "an Executor"
            } else {
                "a LocalExecutor"
            },
        )?;
        if !self.complete {
            writeln!(
                f,
                "(not listed: tasks spawned on the LocalExecutor's own thread; dump there to see them)"
            )?;
        }
        // Children by parent; a task whose parent has ended goes to the top.
        let mut children: HashMap<Option<TaskId>, Vec<usize>> = HashMap::new();
        for (i, task) in self.tasks.iter().enumerate() {
            let parent = task.parent().filter(|p| self.get(*p).is_some());
            children.entry(parent).or_default().push(i);
        }
        // Depth-first, with an explicit stack: (entries, next, prefix of their lines).
        let mut stack = vec![(self.entries(&children, None), 0, String::new())];
        let mut line = String::new();
        loop {
            let depth = stack.len();
            let Some((nodes, next, prefix)) = stack.last_mut() else {
                break;
            };
            let Some(node) = nodes.get(*next) else {
                stack.pop();
                continue;
            };
            *next += 1;
            let last = *next == nodes.len();
            let top = depth == 1;
            line.clear();
            line.push_str(prefix);
            let mut child_prefix = prefix.clone();
            if !top {
                line.push_str(if last { "└── " } else { "├── " });
                if depth <= MAX_DEPTH {
                    child_prefix.push_str(if last { "    " } else { "│   " });
                }
            }
            let below = match node {
                Node::Task(i) => {
                    let task = &self.tasks[*i];
                    self.task_line(&mut line, task);
                    self.entries(&children, Some(task.id()))
                }
                Node::Group(group, members) => {
                    let _ = write!(line, "{group}");
                    members.iter().map(|&i| Node::Task(i)).collect()
                }
            };
            writeln!(f, "{line}")?;
            if !below.is_empty() {
                stack.push((below, 0, child_prefix));
            }
        }
        Ok(())
    }
}

/// A duration as a person reads it in a dump: `<1ms`, `250ms`, `1.5s`, `42s`.
struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d >= Duration::from_secs(10) {
            write!(f, "{}s", d.as_secs())
        } else if d >= Duration::from_secs(1) {
            write!(f, "{:.1}s", d.as_secs_f64())
        } else if d >= Duration::from_millis(1) {
            write!(f, "{}ms", d.as_millis())
        } else {
            f.write_str("<1ms")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Human;
    use std::time::Duration;

    #[test]
    fn durations_read_as_a_person_would() {
        let h = |d| Human(d).to_string();
        assert_eq!(h(Duration::from_micros(300)), "<1ms");
        assert_eq!(h(Duration::from_millis(250)), "250ms");
        assert_eq!(h(Duration::from_millis(1500)), "1.5s");
        assert_eq!(h(Duration::from_secs(42)), "42s");
    }
}
