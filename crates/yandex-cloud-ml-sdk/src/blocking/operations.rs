//! Blocking operations, one line per async method.

use super::{BlockingOutput, Call};
use crate::{
    call::{Call as AsyncCall, HandleCall},
    operations::{OperationInfo, OperationOutput, OperationStatus, Wait},
};

impl super::Sdk {
    /// Operations by id ([`crate::Sdk::operations`]).
    pub fn operations(&self) -> super::Operations {
        self.wrap(self.inner.operations())
    }
}

impl<T: OperationOutput + BlockingOutput> super::Operation<T> {
    /// Everything the operation says about itself.
    pub fn info(&self) -> Call<AsyncCall<HandleCall<OperationInfo>>, OperationInfo> {
        self.call(self.inner.info())
    }

    /// Where it is: running, succeeded or failed.
    pub fn status(&self) -> Call<AsyncCall<HandleCall<OperationStatus>>, OperationStatus> {
        self.call(self.inner.status())
    }

    /// The result if the operation has finished (a dataset or a model comes back blocking).
    pub fn result(&self) -> Call<AsyncCall<HandleCall<T>>, T::Blocking> {
        self.call_bound(self.inner.result())
    }

    /// Asks the server to cancel the operation.
    pub fn cancel(&self) -> Call<AsyncCall<HandleCall<()>>, ()> {
        self.call(self.inner.cancel())
    }

    /// Polls until the operation finishes; set the poll interval, timeout or a progress
    /// callback, then `send`.
    pub fn wait(&self) -> Call<Wait<T>, T::Blocking> {
        self.call_bound(self.inner.wait())
    }
}

impl super::Operations {
    /// An operation by id whose result is `T`. No RPC is made.
    pub fn get<T: OperationOutput + BlockingOutput>(&self, id: impl Into<String>) -> super::Operation<T> {
        self.wrap(self.inner.get(id))
    }

    /// An operation by id whose result stays packed (`google.protobuf.Any`). No RPC is made.
    pub fn get_untyped(&self, id: impl Into<String>) -> super::Operation<prost_types::Any> {
        self.wrap(self.inner.get_untyped(id))
    }
}
