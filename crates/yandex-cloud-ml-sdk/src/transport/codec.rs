//! A codec that sends a request encoded once, so retries resend the same bytes without
//! re-encoding or cloning the message, and decodes responses with prost.

use std::marker::PhantomData;

use bytes::{BufMut, Bytes};
use tonic::{
    Status,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
};
use tonic_prost::ProstDecoder;

pub(crate) struct PreEncoded<Resp>(PhantomData<fn() -> Resp>);

impl<Resp> Default for PreEncoded<Resp> {
    fn default() -> Self {
        PreEncoded(PhantomData)
    }
}

pub(crate) struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl<Resp: prost::Message + Default + Send + 'static> Codec for PreEncoded<Resp> {
    type Encode = Bytes;
    type Decode = Resp;
    type Encoder = BytesEncoder;
    type Decoder = ProstDecoder<Resp>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<Resp> {
        ProstDecoder::new(BufferSettings::default())
    }
}
