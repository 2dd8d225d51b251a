//! The emulator's object storage, spoken to as a raw HTTP client would: presigned URLs are
//! bound to one dataset, file and size, tampered or stale ones are refused like S3 refuses
//! them, repeated PUTs are accepted until validation, parts cannot add up to more than was
//! declared, and the storage budget holds.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::{Code, Request, transport::Channel};
use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use yandex_cloud_ml_proto::yandex::cloud::ai::dataset::v1::{self as pb, dataset_service_client::DatasetServiceClient};

fn authorized<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", "Api-Key test".parse().unwrap());
    r
}

async fn client(e: &EmulatorHandle) -> DatasetServiceClient<Channel> {
    DatasetServiceClient::new(
        Channel::from_shared(format!("http://{}", e.endpoint())).unwrap().connect().await.unwrap(),
    )
}

async fn create(c: &mut DatasetServiceClient<Channel>) -> String {
    let r = pb::CreateDatasetRequest {
        folder_id: "b1gstorage".into(),
        task_type: "TextToTextGeneration".into(),
        upload_format: "jsonlines".into(),
        ..Default::default()
    };
    c.create(authorized(r)).await.unwrap().into_inner().dataset_id
}

/// An HTTP/1.1 request with extra headers; the response with its whole body.
async fn send(method: &str, url: &str, body: &[u8], headers: &[(&str, String)]) -> http::Response<Bytes> {
    let uri: http::Uri = url.parse().unwrap();
    let stream = tokio::net::TcpStream::connect(uri.authority().unwrap().as_str()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut request = http::Request::builder().method(method).uri(uri.path_and_query().unwrap().as_str());
    request = request.header("host", uri.authority().unwrap().as_str());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = sender.send_request(request.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    http::Response::from_parts(parts, body.collect().await.map(|b| b.to_bytes()).unwrap_or_default())
}

/// An HTTP/1.1 request; returns the status, the ETag and the body.
async fn http(method: &str, url: &str, body: &[u8], length: Option<usize>) -> (u16, Option<String>, String) {
    let length: Vec<_> = length.map(|n| ("content-length", n.to_string())).into_iter().collect();
    let response = send(method, url, body, &length).await;
    let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), etag, String::from_utf8_lossy(response.body()).into_owned())
}

/// A PUT announcing `length` bytes that sends `sent` and closes its side: the raw response.
async fn broken_off_put(url: &str, length: usize, sent: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = start_put(url, length, sent).await;
    stream.shutdown().await.unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
}

/// A PUT announcing `length` bytes that sends only `first` for now; `answer` sends the rest.
async fn start_put(url: &str, length: usize, first: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let uri: http::Uri = url.parse().unwrap();
    let host = uri.authority().unwrap().as_str();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head =
        format!("PUT {} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {length}\r\n\r\n", uri.path_and_query().unwrap());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    // Long enough for the server to have read the head and the first bytes.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stream
}

/// Sends the rest of a [`start_put`] and reads the answer: its head and its body.
async fn answer(mut stream: tokio::net::TcpStream, rest: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(rest).await.unwrap();
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("an answer within 10 s");
    String::from_utf8_lossy(&got).into_owned()
}

async fn put(url: &str, body: &[u8]) -> (u16, Option<String>, String) {
    http("PUT", url, body, Some(body.len())).await
}

#[tokio::test]
async fn presigned_urls_are_bound_checked_and_refused_like_s3() {
    // A body that stops coming is given up after the read timeout.
    let config = EmulatorConfig { request_read_timeout_ms: 300, ..Default::default() };
    let e = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let mut c = client(&e).await;
    let id = create(&mut c).await;
    // Nothing to validate yet.
    let early = c.validate(authorized(pb::ValidateDatasetRequest { dataset_id: id.clone() })).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    let expected = format!("dataset {id} has no uploaded file to validate (status DRAFT); upload the file first");
    assert_eq!(early.message(), expected);
    let url = |size| pb::GetUploadDraftUrlRequest { dataset_id: id.clone(), size_bytes: size };
    let first = c.get_upload_draft_url(authorized(url(10))).await.unwrap().into_inner().upload_url;
    assert!(first.starts_with(&format!("http://{}/storage/upload/{id}?", e.endpoint())), "{first}");

    // A tampered signature, a wrong length, a body that stops short.
    let tampered = format!("{}0", first.trim_end_matches(|c: char| c.is_ascii_hexdigit()));
    let (status, _, body) = put(&tampered, b"0123456789").await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>SignatureDoesNotMatch</Code>"), "{body}");
    let (status, _, body) = put(&first, b"012345678").await;
    assert_eq!(status, 400, "content-length differs from the signed size");
    assert!(body.contains("<Code>BadRequest</Code>"), "{body}");
    // A body that breaks off (the client closes its side after 5 of 10 bytes).
    let body = broken_off_put(&first, 10, b"01234").await;
    assert!(body.starts_with("HTTP/1.1 400") && body.contains("<Code>IncompleteBody</Code>"), "{body}");
    let (status, _, body) = http("PUT", &first, b"01234", Some(10)).await;
    assert_eq!(status, 400, "a body shorter than announced");
    assert!(body.contains("RequestTimeout"), "{body}");

    // Accepted, with an ETag, and again (S3 lets a presigned PUT be repeated).
    let (status, etag, _) = put(&first, b"0123456789").await;
    assert_eq!((status, etag.as_ref().map(|t| t.starts_with('"'))), (200, Some(true)));
    assert_eq!(put(&first, b"0123456789").await, (200, etag, String::new()));

    // A new URL makes the old one stale.
    let stale = c.get_upload_draft_url(authorized(url(12))).await.unwrap().into_inner().upload_url;
    let (status, _, body) = put(&first, b"0123456789").await;
    assert_eq!(status, 403);
    assert!(body.contains("earlier upload"), "{body}");
    // Even a URL for the same size is void once a newer one was asked for.
    let second = c.get_upload_draft_url(authorized(url(12))).await.unwrap().into_inner().upload_url;
    let (status, _, body) = put(&stale, b"{\"a\": \"b\"}\n\n").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(put(&second, b"{\"a\": \"b\"}\n\n").await.0, 200);

    // Validation takes the file; the URL is then refused.
    c.validate(authorized(pb::ValidateDatasetRequest { dataset_id: id.clone() })).await.unwrap();
    let (status, _, body) = put(&second, b"{\"a\": \"b\"}\n\n").await;
    assert_eq!(status, 403, "{body}");
    let again = c.validate(authorized(pb::ValidateDatasetRequest { dataset_id: id.clone() })).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(
        again.message().starts_with(&format!("dataset {id} has no uploaded file to validate (status ")),
        "{again:?}"
    );

    // Downloads: only of READY datasets; this one is INVALID (no response column).
    let mut status = pb::dataset_info::Status::Validating as i32;
    while status == pb::dataset_info::Status::Validating as i32 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let d = c.describe(authorized(pb::DescribeDatasetRequest { dataset_id: id.clone() })).await.unwrap();
        status = d.into_inner().dataset.unwrap().status;
    }
    assert_eq!(status, pb::dataset_info::Status::Invalid as i32);
    let no = c.get_download_urls(authorized(pb::GetDownloadUrlsRequest { dataset_id: id.clone() })).await.unwrap_err();
    assert_eq!(no.code(), Code::FailedPrecondition);
    assert_eq!(no.message(), format!("dataset {id} is INVALID; only READY datasets can be downloaded"));
}

#[tokio::test]
async fn parts_cannot_add_up_to_more_than_was_declared() {
    let e = Emulator::builder().start("127.0.0.1:0").await.unwrap();
    let mut c = client(&e).await;
    let id = create(&mut c).await;
    let start = pb::StartMultipartUploadDraftRequest { dataset_id: id.clone(), size_bytes: 20, parts: 2 };
    let urls = c.start_multipart_upload_draft(authorized(start)).await.unwrap().into_inner().multipart_upload_urls;
    let (status, etag1, _) = put(&urls[0], &[b'a'; 15]).await;
    assert_eq!(status, 200);
    let (status, _, body) = put(&urls[1], &[b'b'; 10]).await;
    assert_eq!(status, 400);
    assert!(body.contains("EntityTooLarge"), "{body}");
    let (status, etag2, _) = put(&urls[1], &[b'b'; 5]).await;
    assert_eq!(status, 200);
    // Finishing checks order, ETags and the total.
    let part = |n: i64, etag: &Option<String>| pb::UploadedPartInfo { part_num: n, etag: etag.clone().unwrap() };
    let wrong = pb::FinishMultipartUploadDraftRequest {
        dataset_id: id.clone(),
        uploaded_parts: vec![part(1, &etag2), part(2, &etag2)],
    };
    let e1 = c.finish_multipart_upload_draft(authorized(wrong)).await.unwrap_err();
    assert!(e1.message().contains("etag"), "{e1:?}");
    let right = pb::FinishMultipartUploadDraftRequest {
        dataset_id: id.clone(),
        uploaded_parts: vec![part(1, &etag1), part(2, &etag2)],
    };
    c.finish_multipart_upload_draft(authorized(right)).await.unwrap();
    assert_eq!(put(&urls[0], &[b'a'; 15]).await.0, 403, "the upload is complete");

    // Parts sent at the same time, each fitting on its own, do not add up to more either.
    let id = create(&mut c).await;
    let start = pb::StartMultipartUploadDraftRequest { dataset_id: id.clone(), size_bytes: 10, parts: 2 };
    let urls = c.start_multipart_upload_draft(authorized(start)).await.unwrap().into_inner().multipart_upload_urls;
    let first = start_put(&urls[0], 8, b"aaaa").await;
    assert_eq!(put(&urls[1], &[b'b'; 8]).await.0, 200);
    let response = answer(first, b"aaaa").await;
    assert!(response.starts_with("HTTP/1.1 400") && response.contains("EntityTooLarge"), "{response}");
}

#[tokio::test]
async fn a_new_upload_drops_what_the_last_one_left_and_voided_urls_stay_void_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("ycml-upload-generations-{}", std::process::id()));
    let config = || EmulatorConfig { data_dir: Some(dir.clone()), max_stored_bytes: 30, ..Default::default() };
    let e = Emulator::builder().config(config()).start("127.0.0.1:0").await.unwrap();
    let mut c = client(&e).await;
    let id = create(&mut c).await;
    // A part of 15 bytes, then the client switches to one PUT of 20: the part goes, the
    // file fits the budget of 30.
    let start = pb::StartMultipartUploadDraftRequest { dataset_id: id.clone(), size_bytes: 25, parts: 2 };
    let urls = c.start_multipart_upload_draft(authorized(start)).await.unwrap().into_inner().multipart_upload_urls;
    assert_eq!(put(&urls[0], &[b'a'; 15]).await.0, 200);
    let whole = |size| pb::GetUploadDraftUrlRequest { dataset_id: id.clone(), size_bytes: size };
    let url = c.get_upload_draft_url(authorized(whole(20))).await.unwrap().into_inner().upload_url;
    let (status, _, body) = put(&url, &[b'x'; 20]).await;
    assert_eq!(status, 200, "the part left by the multipart upload still counts: {body}");
    // A URL voided by a newer one stays void after a restart, even once newer URLs are given.
    let voided = c.get_upload_draft_url(authorized(whole(10))).await.unwrap().into_inner().upload_url;
    c.get_upload_draft_url(authorized(whole(10))).await.unwrap();
    let before = e.endpoint().to_string();
    e.shutdown().await;
    let e = Emulator::builder().config(config()).start("127.0.0.1:0").await.unwrap();
    let mut c = client(&e).await;
    // As many new URLs as were given before the voided one and after: upload numbers that
    // started over at a restart would make the voided URL's number current again.
    let mut fresh = String::new();
    for _ in 0..3 {
        fresh = c.get_upload_draft_url(authorized(whole(10))).await.unwrap().into_inner().upload_url;
    }
    // The same URL, at the restarted emulator's address.
    let voided = voided.replace(&before, &e.endpoint().to_string());
    let (status, _, body) = put(&voided, &[b'v'; 10]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(put(&fresh, &[b'f'; 10]).await.0, 200);
    e.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_storage_budget_refuses_what_does_not_fit() {
    let config = EmulatorConfig { max_stored_bytes: 100, ..Default::default() };
    let e = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let mut c = client(&e).await;
    let id = create(&mut c).await;
    let url = c
        .get_upload_draft_url(authorized(pb::GetUploadDraftUrlRequest { dataset_id: id.clone(), size_bytes: 200 }))
        .await
        .unwrap()
        .into_inner()
        .upload_url;
    let (status, _, body) = put(&url, &[b'x'; 200]).await;
    assert_eq!(status, 503);
    assert!(body.contains("storage is full"), "{body}");
    // Deleting the dataset frees its bytes; a file that fits is taken.
    let id = create(&mut c).await;
    let url = c
        .get_upload_draft_url(authorized(pb::GetUploadDraftUrlRequest { dataset_id: id.clone(), size_bytes: 90 }))
        .await
        .unwrap()
        .into_inner()
        .upload_url;
    assert_eq!(put(&url, &[b'x'; 90]).await.0, 200);
    c.delete(authorized(pb::DeleteDatasetRequest { dataset_id: id })).await.unwrap();
    let id = create(&mut c).await;
    let url = c
        .get_upload_draft_url(authorized(pb::GetUploadDraftUrlRequest { dataset_id: id.clone(), size_bytes: 90 }))
        .await
        .unwrap()
        .into_inner()
        .upload_url;
    assert_eq!(put(&url, &[b'x'; 90]).await.0, 200);
}

#[tokio::test]
async fn a_trickling_upload_holds_only_the_bytes_it_sent() {
    // Budget 100 bytes: an upload declaring 90 that has sent 5 must not keep another of 90 out.
    let config = EmulatorConfig { max_stored_bytes: 100, ..Default::default() };
    let e = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let mut c = client(&e).await;
    let upload_url = |id: String| pb::GetUploadDraftUrlRequest { dataset_id: id, size_bytes: 90 };
    let slow = create(&mut c).await;
    let slow_url = c.get_upload_draft_url(authorized(upload_url(slow))).await.unwrap().into_inner().upload_url;
    let trickle = start_put(&slow_url, 90, b"xxxxx").await;

    let fast = create(&mut c).await;
    let fast_url = c.get_upload_draft_url(authorized(upload_url(fast))).await.unwrap().into_inner().upload_url;
    let (status, _, body) = put(&fast_url, &[b'x'; 90]).await;
    assert_eq!(status, 200, "{body}");
    // The trickle now finds the budget full when the rest of its bytes arrive.
    let response = answer(trickle, &[b'x'; 85]).await;
    assert!(response.starts_with("HTTP/1.1 503") && response.contains("storage is full"), "{response}");
}

/// A GET with a `Range` header: the status, the `Content-Range` and the body.
async fn get_range(url: &str, range: &str) -> (u16, Option<String>, Bytes) {
    let response = send("GET", url, b"", &[("range", range.to_owned())]).await;
    let content_range = response.headers().get("content-range").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), content_range, response.into_body())
}

#[tokio::test]
async fn a_download_resumes_from_a_byte_with_a_range_request() {
    let e = Emulator::builder().start("127.0.0.1:0").await.unwrap();
    let mut c = client(&e).await;
    let id = create(&mut c).await;
    let body = b"{\"request\": [{\"role\": \"user\", \"text\": \"hi\"}], \"response\": \"hello\"}\n";
    let url = pb::GetUploadDraftUrlRequest { dataset_id: id.clone(), size_bytes: body.len() as i64 };
    let url = c.get_upload_draft_url(authorized(url)).await.unwrap().into_inner().upload_url;
    assert_eq!(put(&url, body).await.0, 200);
    c.validate(authorized(pb::ValidateDatasetRequest { dataset_id: id.clone() })).await.unwrap();
    let ready = pb::dataset_info::Status::Ready as i32;
    let mut status = 0;
    while status != ready {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let d = c.describe(authorized(pb::DescribeDatasetRequest { dataset_id: id.clone() })).await.unwrap();
        status = d.into_inner().dataset.unwrap().status;
        assert_ne!(status, pb::dataset_info::Status::Invalid as i32);
    }
    let urls = c.get_download_urls(authorized(pb::GetDownloadUrlsRequest { dataset_id: id })).await.unwrap();
    let url = urls.into_inner().download_urls[0].url.clone();
    let (status, _, whole) = get_range(&url, "bytes=0-").await;
    assert_eq!(status, 206);
    let n = whole.len();
    let (status, content_range, rest) = get_range(&url, "bytes=10-").await;
    assert_eq!((status, content_range), (206, Some(format!("bytes 10-{}/{n}", n - 1))));
    assert_eq!(rest, whole.slice(10..));
    // Past the end: 416; a form the emulator does not serve: the whole object, 200.
    assert_eq!(get_range(&url, &format!("bytes={n}-")).await.0, 416);
    let (status, _, all) = get_range(&url, "bytes=0-4").await;
    assert_eq!((status, all), (200, whole));
}
