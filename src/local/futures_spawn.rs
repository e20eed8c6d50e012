//! `futures_task::LocalSpawn` for [`LocalExecutor`]: what `futures`' combinators that take a
//! spawner (`LocalSpawnExt::spawn_local`) need.

use futures_task::{LocalFutureObj, LocalSpawn, SpawnError};

use super::LocalExecutor;

impl LocalSpawn for LocalExecutor {
    fn spawn_local_obj(&self, future: LocalFutureObj<'static, ()>) -> Result<(), SpawnError> {
        if self.shared.owner.is_closed() {
            return Err(SpawnError::shutdown());
        }
        self.spawn(future).detach();
        Ok(())
    }

    fn status_local(&self) -> Result<(), SpawnError> {
        if self.shared.owner.is_closed() {
            Err(SpawnError::shutdown())
        } else {
            Ok(())
        }
    }
}
