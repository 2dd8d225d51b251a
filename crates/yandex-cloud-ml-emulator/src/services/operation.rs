//! `OperationService`: polling and cancelling operations from the shared store. It knows no
//! domain: each kind of long work (tuning, batch) registers how its operations are rebuilt and
//! cancelled ([`OperationKind`]).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::yandex::cloud::operation::{
    self as pb,
    operation_service_server::{OperationService, OperationServiceServer},
};

use super::OperationKind;
use crate::state::State;

pub(crate) struct Operations {
    state: Arc<State>,
    kinds: Vec<Arc<dyn OperationKind>>,
}

impl Operations {
    pub(crate) fn server(state: Arc<State>, kinds: Vec<Arc<dyn OperationKind>>) -> OperationServiceServer<Operations> {
        OperationServiceServer::new(Operations { state, kinds })
    }

    fn rebuilt(&self, id: &str) -> Option<pb::Operation> {
        self.kinds.iter().find_map(|k| k.rebuild(&self.state, id))
    }
}

fn required(id: &str) -> Result<&str, Status> {
    if id.trim().is_empty() { Err(Status::invalid_argument("operation_id: required")) } else { Ok(id) }
}

#[tonic::async_trait]
impl OperationService for Operations {
    async fn get(&self, request: Request<pb::GetOperationRequest>) -> Result<Response<pb::Operation>, Status> {
        let id = required(&request.get_ref().operation_id)?;
        match self.state.operations.poll(id) {
            Err(e) if e.code() == tonic::Code::NotFound => self.rebuilt(id).map(Response::new).ok_or(e),
            other => other.map(Response::new),
        }
    }

    async fn cancel(&self, request: Request<pb::CancelOperationRequest>) -> Result<Response<pb::Operation>, Status> {
        let id = required(&request.get_ref().operation_id)?;
        if self.kinds.iter().any(|k| k.cancel(&self.state, id)) {
            let op = self.state.operations.get(id).or_else(|| self.rebuilt(id));
            return op.map(Response::new).ok_or_else(|| Status::not_found(format!("Operation {id} not found")));
        }
        Ok(Response::new(self.state.operations.cancel(id)?))
    }
}
