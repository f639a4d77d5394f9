//! A pipeline's own thread: a current-thread runtime that runs the pipeline's
//! task and the file sources it reads alone.
//!
//! A source and its pipeline on one thread hand a chunk over by a send that
//! makes the pipeline's task ready on the same thread: no other thread is woken
//! between an append and its collector call (on the shared runtime, each chunk
//! woke a parked worker, the largest wait of a one-record append). The thread
//! also keeps a pipeline's plugin calls off the workers that serve subscribers:
//! the system's scheduler shares the cores between pipelines and connections,
//! whatever a plugin does between two epoch ticks.

use std::future::Future;
use std::io;

use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// A thread that runs the tasks spawned on it until they have all ended.
pub(crate) struct PipelineThread {
    runtime: tokio::runtime::Handle,
    tasks: TaskTracker,
    exited: oneshot::Receiver<()>,
}

impl PipelineThread {
    /// Starts the thread (`pipe-<name>`, as much of it as the system keeps). It
    /// ends once [`PipelineThread::close`] was called and every task spawned on
    /// it has ended.
    pub fn start(name: &str) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let tasks = TaskTracker::new();
        let all_ended = tasks.clone();
        let (exited_tx, exited) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("pipe-{name}"))
            .spawn(move || {
                runtime.block_on(all_ended.wait());
                drop(runtime);
                let _ = exited_tx.send(());
            })?;
        Ok(Self {
            runtime: handle,
            tasks,
            exited,
        })
    }

    /// Runs `task` on the thread.
    pub fn spawn<F>(&self, task: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn_on(task, &self.runtime).abort_handle()
    }

    /// No more tasks: the thread ends with the last of them.
    pub fn close(&self) {
        self.tasks.close();
    }

    /// Waits until `deadline` for every task to end; whether they did.
    pub async fn wait_until(&self, deadline: Instant) -> bool {
        tokio::time::timeout_at(deadline, self.tasks.wait())
            .await
            .is_ok()
    }

    /// Waits until `deadline` for the thread to end (its tasks have ended; its
    /// runtime is being dropped). Whether it did.
    pub async fn join_until(&mut self, deadline: Instant) -> bool {
        tokio::time::timeout_at(deadline, &mut self.exited)
            .await
            .is_ok()
    }
}

impl Drop for PipelineThread {
    /// A thread dropped before it was closed (its pipeline failed to start)
    /// still ends with its tasks.
    fn drop(&mut self) {
        self.tasks.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn runs_its_tasks_on_its_own_thread_and_ends_with_them() {
        let mut thread = PipelineThread::start("t").unwrap();
        let (tx, rx) = oneshot::channel();
        thread.spawn(async move {
            let name = std::thread::current().name().map(str::to_string);
            let _ = tx.send(name);
        });
        thread.close();
        assert_eq!(rx.await.unwrap().as_deref(), Some("pipe-t"));
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(thread.wait_until(deadline).await);
        assert!(
            thread.join_until(deadline).await,
            "the thread ends with its tasks"
        );
    }

    #[tokio::test]
    async fn an_aborted_task_ends_and_the_thread_with_it() {
        let mut thread = PipelineThread::start("t").unwrap();
        let stuck = thread.spawn(std::future::pending());
        thread.close();
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(
            !thread.wait_until(soon).await,
            "a pending task keeps it running"
        );
        stuck.abort();
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(thread.join_until(deadline).await);
    }
}
