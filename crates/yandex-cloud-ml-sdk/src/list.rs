//! One listing for every domain. A [`List`] is a [`Call`] over a `List…` RPC: set its filters
//! and options, then `.await` every item of every page, or [`stream`](Call::stream) the items
//! as pages arrive. Each domain says how to fetch one page with a small [`ListRpc`] impl.
//!
//! ```no_run
//! # async fn demo(sdk: yandex_cloud_ml_sdk::Sdk) -> yandex_cloud_ml_sdk::Result<()> {
//! use futures_util::TryStreamExt;
//! use std::time::Duration;
//! let all = sdk.batch().list().timeout(Duration::from_secs(30)).await?;
//! let mut ready = sdk.datasets().list().status("ready".parse()?).stream();
//! while let Some(dataset) = ready.try_next().await? {
//!     println!("{}", dataset.id());
//! }
//! # Ok(()) }
//! ```
//!
//! Paging stops at the page whose next-page token is empty (an empty page that still names a
//! next one is followed), or at a token seen before, so a server that hands out the same
//! token again cannot make a listing go round forever. `.timeout` bounds the whole listing,
//! every page included, also when it is streamed.

use std::{collections::HashSet, pin::Pin, time::Duration};

use futures_core::Stream;
use futures_util::TryStreamExt;
use tokio::time::Instant;

use crate::{
    call::{Action, BoxFuture, Call, CallOptions},
    error::{Error, Result},
    sdk::Sdk,
    transport::rpc::Rpc,
};

/// Default budget of a whole listing, every page included.
const LIST_TIMEOUT: Duration = Duration::from_secs(300);

/// One page of a listing: its items and the token of the next one (empty at the end).
#[derive(Debug)]
pub struct Page<T> {
    pub(crate) items: Vec<T>,
    pub(crate) next: String,
}

/// What one page request asks for.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub(crate) token: String,
    pub(crate) size: i64,
    pub(crate) options: CallOptions,
}

impl PageRequest {
    /// The page `request` (built with this page's token and size) gets from `rpc`, its items
    /// and next token taken from the response by `split`.
    pub(crate) fn fetch<Req, Resp, T>(
        self,
        sdk: &Sdk,
        rpc: &'static Rpc,
        request: Req,
        split: impl FnOnce(Resp) -> (Vec<T>, String) + Send + 'static,
    ) -> BoxFuture<'static, Page<T>>
    where
        Req: prost::Message + std::fmt::Debug + Send + 'static,
        Resp: prost::Message + std::fmt::Debug + Default + Send + Sync + 'static,
    {
        let sdk = sdk.clone();
        Box::pin(async move {
            let response: Resp = sdk.transport().unary(rpc, request, &self.options).await?;
            let (items, next) = split(response);
            Ok(Page { items, next })
        })
    }
}

/// A `List…` RPC and its filters: how to fetch one page. Implemented by each domain's query
/// type; not meant to be implemented outside the SDK.
pub trait ListRpc: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// What the listing yields.
    type Item: Send + 'static;

    /// Fetches one page.
    #[doc(hidden)]
    fn page(&self, request: PageRequest) -> BoxFuture<'static, Page<Self::Item>>;
}

/// The action of a [`List`]: a query and its page size.
#[derive(Debug, Clone)]
pub struct Listing<Q> {
    query: Q,
    page_size: i64,
}

/// A listing: a [`Call`] whose `.await` collects every item of every page.
pub type List<Q> = Call<Listing<Q>>;

/// The items of a listing as they arrive (boxed, so it can be stored and polled as is).
pub type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send>>;

impl<Q: ListRpc> Listing<Q> {
    pub(crate) fn call(query: Q) -> List<Q> {
        Call::new(Listing { query, page_size: 0 })
    }
}

impl<Q: ListRpc> Action for Listing<Q> {
    type Output = Vec<Q::Item>;
    const DEFAULT_TIMEOUT: Duration = LIST_TIMEOUT;

    async fn execute(self, options: CallOptions) -> Result<Vec<Q::Item>> {
        items(self, options).try_collect().await
    }
}

impl<Q: ListRpc> Call<Listing<Q>> {
    /// Items per page (the server's default when unset).
    pub fn page_size(mut self, size: u32) -> Self {
        self.action_mut().page_size = i64::from(size);
        self
    }

    /// Every item, fetched page by page as the stream is read; the first error ends it.
    pub fn stream(self) -> ItemStream<Q::Item> {
        let (listing, options) = self.into_parts();
        Box::pin(items(listing, options))
    }

    /// The query, for the domain's filter methods.
    pub(crate) fn query_mut(&mut self) -> &mut Q {
        &mut self.action_mut().query
    }
}

/// Every item of every page, within one deadline for the whole listing.
fn items<Q: ListRpc>(listing: Listing<Q>, options: CallOptions) -> impl Stream<Item = Result<Q::Item>> + Send {
    struct State<Q: ListRpc> {
        listing: Listing<Q>,
        options: CallOptions,
        deadline: Option<Instant>,
        token: Option<String>,
        buffered: std::vec::IntoIter<Q::Item>,
        seen: HashSet<String>,
    }
    let state = State {
        listing,
        options,
        deadline: None,
        token: Some(String::new()),
        buffered: Vec::new().into_iter(),
        seen: HashSet::new(),
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.buffered.next() {
                return Some((Ok(item), state));
            }
            let token = state.token.take()?;
            // The budget starts with the first page, when the listing is first read.
            let deadline =
                *state.deadline.get_or_insert_with(|| Instant::now() + crate::clock::capped(state.options.timeout));
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Some((Err(Error::timeout(state.options.timeout).context("listing")), state));
            }
            let request = PageRequest {
                token,
                size: state.listing.page_size,
                options: CallOptions { timeout: remaining, ..state.options.clone() },
            };
            match state.listing.query.page(request).await {
                Ok(page) => {
                    if page.next.is_empty() {
                        // The last page.
                    } else if state.seen.insert(page.next.clone()) {
                        state.token = Some(page.next);
                    } else {
                        tracing::warn!(token = %page.next, "the server repeated a page token; the listing ends here");
                    }
                    state.buffered = page.items.into_iter();
                }
                Err(e) => return Some((Err(e), state)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::StreamExt;

    use super::*;

    /// Pages from a table keyed by token; records the tokens asked for.
    #[derive(Debug, Clone)]
    struct Table {
        pages: Vec<(&'static str, Vec<i32>, &'static str)>,
        asked: Arc<Mutex<Vec<String>>>,
    }

    impl ListRpc for Table {
        type Item = i32;

        fn page(&self, request: PageRequest) -> BoxFuture<'static, Page<i32>> {
            self.asked.lock().unwrap().push(request.token.clone());
            let found = self.pages.iter().find(|(token, _, _)| *token == request.token).cloned();
            Box::pin(async move {
                let (_, items, next) = found.ok_or_else(|| Error::decode("no such page"))?;
                Ok(Page { items, next: next.to_owned() })
            })
        }
    }

    fn table(pages: Vec<(&'static str, Vec<i32>, &'static str)>) -> Table {
        Table { pages, asked: Arc::default() }
    }

    #[tokio::test]
    async fn every_page_is_read_until_an_empty_token_and_empty_pages_with_a_token_are_followed() {
        let t = table(vec![("", vec![1, 2], "b"), ("b", vec![], "c"), ("c", vec![3], "")]);
        assert_eq!(Listing::call(t.clone()).await.unwrap(), [1, 2, 3]);
        assert_eq!(*t.asked.lock().unwrap(), ["", "b", "c"]);
    }

    #[tokio::test]
    async fn a_repeated_token_ends_the_listing() {
        let t = table(vec![("", vec![7], "same"), ("same", vec![8], "same")]);
        let all: Vec<i32> = Listing::call(t).stream().map(|r| r.unwrap()).collect().await;
        assert_eq!(all, [7, 8]);
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_after_the_items_before_it() {
        let t = table(vec![("", vec![1], "missing")]);
        let got: Vec<Result<i32>> = Listing::call(t).page_size(5).stream().collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(*got[0].as_ref().unwrap(), 1);
        assert!(got[1].is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_bounds_the_whole_listing() {
        let t = table(vec![("", vec![1], "b"), ("b", vec![2], "")]);
        let mut stream = Box::pin(Listing::call(t).timeout(Duration::from_secs(1)).stream());
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(stream.next().await.unwrap().unwrap_err().is_timeout());
    }
}
