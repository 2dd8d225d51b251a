//! `IamTokenService`: issues IAM tokens for OAuth tokens and service-account JWTs.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use yandex_cloud_ml_proto::yandex::cloud::iam::v1::{
    self as pb,
    iam_token_service_server::{IamTokenService, IamTokenServiceServer},
};

use crate::{auth, state::State};

pub(crate) struct Iam(pub Arc<State>);

impl Iam {
    pub(crate) fn server(state: Arc<State>) -> IamTokenServiceServer<Iam> {
        IamTokenServiceServer::new(Iam(state))
    }

    fn issue(&self) -> pb::CreateIamTokenResponse {
        let (token, expires) = self.0.tokens.issue();
        pb::CreateIamTokenResponse { iam_token: token, expires_at: Some(expires.into()) }
    }
}

#[tonic::async_trait]
impl IamTokenService for Iam {
    async fn create(
        &self,
        request: Request<pb::CreateIamTokenRequest>,
    ) -> Result<Response<pb::CreateIamTokenResponse>, Status> {
        use pb::create_iam_token_request::Identity;
        match &request.get_ref().identity {
            Some(Identity::YandexPassportOauthToken(token)) => auth::check_oauth(&self.0, token)?,
            Some(Identity::Jwt(jwt)) => auth::check_jwt(jwt)?,
            None => {
                return Err(Status::invalid_argument(
                    "identity: exactly one of yandex_passport_oauth_token, jwt is required",
                ));
            }
        }
        Ok(Response::new(self.issue()))
    }

    async fn create_for_service_account(
        &self,
        request: Request<pb::CreateIamTokenForServiceAccountRequest>,
    ) -> Result<Response<pb::CreateIamTokenResponse>, Status> {
        let id = &request.get_ref().service_account_id;
        if id.trim().is_empty() || id.len() > 50 {
            return Err(Status::invalid_argument("service_account_id: required, at most 50 characters"));
        }
        Ok(Response::new(self.issue()))
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeIamTokenRequest>,
    ) -> Result<Response<pb::RevokeIamTokenResponse>, Status> {
        let subject = super::caller(&request);
        let token = &request.get_ref().iam_token;
        if token.is_empty() {
            return Err(Status::invalid_argument("iam_token: required"));
        }
        if !self.0.tokens.revoke(token) {
            return Err(Status::not_found("The token was not issued by this emulator"));
        }
        Ok(Response::new(pb::RevokeIamTokenResponse { subject_id: subject }))
    }
}
