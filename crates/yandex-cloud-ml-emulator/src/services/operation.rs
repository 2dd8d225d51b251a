//! `OperationService`: polling and cancelling operations from the shared store.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::yandex::cloud::operation::{
    self as pb,
    operation_service_server::{OperationService, OperationServiceServer},
};

use crate::state::State;

pub(crate) struct Operations(pub Arc<State>);

impl Operations {
    pub(crate) fn server(state: Arc<State>) -> OperationServiceServer<Operations> {
        OperationServiceServer::new(Operations(state))
    }
}

fn required(id: &str) -> Result<&str, Status> {
    if id.trim().is_empty() { Err(Status::invalid_argument("operation_id: required")) } else { Ok(id) }
}

#[tonic::async_trait]
impl OperationService for Operations {
    async fn get(&self, request: Request<pb::GetOperationRequest>) -> Result<Response<pb::Operation>, Status> {
        let id = required(&request.get_ref().operation_id)?;
        match self.0.operations.poll(id) {
            // A tuning task outlives its operation (evicted, or from before a restart).
            Err(e) if e.code() == tonic::Code::NotFound => {
                super::tuning::operation_of(&self.0, id).map(Response::new).ok_or(e)
            }
            other => other.map(Response::new),
        }
    }

    async fn cancel(&self, request: Request<pb::CancelOperationRequest>) -> Result<Response<pb::Operation>, Status> {
        let id = required(&request.get_ref().operation_id)?;
        // A tuning task's operation: the task is cancelled with it, or stays as it ended.
        if self.0.tuning.get(id).is_ok() {
            super::tuning::cancel(&self.0, id);
            let op = self.0.operations.get(id).or_else(|| super::tuning::operation_of(&self.0, id));
            return op.map(Response::new).ok_or_else(|| Status::not_found(format!("Operation {id} not found")));
        }
        // A batch task's operation: the task is cancelled with it, or stays as it ended.
        if let Some(task) = self.0.batch.tasks.find(|t| t.operation_id == id) {
            let _ = super::batch::cancel(&self.0, &task.task_id);
            return self
                .0
                .operations
                .get(id)
                .map(Response::new)
                .ok_or_else(|| Status::not_found(format!("Operation {id} not found")));
        }
        Ok(Response::new(self.0.operations.cancel(id)?))
    }
}
