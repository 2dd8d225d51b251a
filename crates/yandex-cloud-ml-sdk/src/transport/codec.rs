//! A codec that sends a request message shared by every attempt of a call, so retries resend it
//! without cloning the message or keeping an encoded copy, and decodes responses with prost.

use std::{marker::PhantomData, sync::Arc};

use tonic::{
    Status,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
};
use tonic_prost::ProstDecoder;

pub(crate) struct SharedCodec<Req, Resp>(PhantomData<fn(Arc<Req>) -> Resp>);

impl<Req, Resp> Default for SharedCodec<Req, Resp> {
    fn default() -> Self {
        SharedCodec(PhantomData)
    }
}

pub(crate) struct SharedEncoder<Req>(PhantomData<fn(Arc<Req>)>);

impl<Req: prost::Message + Send + Sync + 'static> Encoder for SharedEncoder<Req> {
    type Item = Arc<Req>;
    type Error = Status;

    fn encode(&mut self, item: Arc<Req>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // The buffer grows as needed, so encoding cannot run out of room.
        item.encode(dst).map_err(|e| Status::internal(format!("encoding the request failed: {e}")))
    }
}

impl<Req, Resp> Codec for SharedCodec<Req, Resp>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    type Encode = Arc<Req>;
    type Decode = Resp;
    type Encoder = SharedEncoder<Req>;
    type Decoder = ProstDecoder<Resp>;

    fn encoder(&mut self) -> SharedEncoder<Req> {
        SharedEncoder(PhantomData)
    }

    fn decoder(&mut self) -> ProstDecoder<Resp> {
        ProstDecoder::new(BufferSettings::default())
    }
}
