//! Pages of `List` answers. Items are ordered by when they were created (and id, for ties);
//! a page token is the position a page ended at, not an index, so items created or deleted
//! between pages neither break the listing nor make it repeat or skip the others.

use prost_types::Timestamp;
use tonic::Status;

/// Items listed per page when the request does not say.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Where an item sits in a listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    seconds: i64,
    nanos: i32,
    id: String,
}

impl Position {
    pub(crate) fn new(created_at: Option<Timestamp>, id: &str) -> Position {
        let t = created_at.unwrap_or_default();
        Position { seconds: t.seconds, nanos: t.nanos, id: id.to_owned() }
    }

    fn token(&self) -> String {
        format!("{}.{}.{}", self.seconds, self.nanos, self.id)
    }

    fn parse(token: &str) -> Result<Position, Status> {
        let bad = || Status::invalid_argument("page_token: not a token from an earlier page of this listing");
        let mut parts = token.splitn(3, '.');
        let seconds = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let nanos = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let id = parts.next().filter(|id| !id.is_empty()).ok_or_else(bad)?.to_owned();
        Ok(Position { seconds, nanos, id })
    }
}

/// Which way a listing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

/// The page after `token` (the first page for an empty one) of `items`, and the token of the
/// next page (empty after the last).
pub(crate) fn page<T>(
    mut items: Vec<T>,
    position: impl Fn(&T) -> Position,
    order: Order,
    page_size: i64,
    token: &str,
) -> Result<(Vec<T>, String), Status> {
    let size = match usize::try_from(page_size) {
        Ok(0) => DEFAULT_PAGE,
        Ok(n) if n <= MAX_PAGE => n,
        _ => return Err(Status::invalid_argument(format!("page_size: must be between 0 and {MAX_PAGE}"))),
    };
    items.sort_by_cached_key(&position);
    if order == Order::NewestFirst {
        items.reverse();
    }
    let start = if token.is_empty() {
        0
    } else {
        let after = Position::parse(token)?;
        items.partition_point(|item| match order {
            Order::OldestFirst => position(item) <= after,
            Order::NewestFirst => position(item) >= after,
        })
    };
    let rest = items.len().saturating_sub(start);
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = match page.last() {
        Some(last) if rest > size => position(last).token(),
        _ => String::new(),
    };
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, id: &str) -> (i64, String) {
        (seconds, id.to_owned())
    }

    fn walk(items: &[(i64, String)], order: Order, size: i64) -> Vec<String> {
        let position = |(s, id): &(i64, String)| Position::new(Some(Timestamp { seconds: *s, nanos: 0 }), id);
        let (mut seen, mut token) = (Vec::new(), String::new());
        loop {
            let (page, next) = page(items.to_vec(), position, order, size, &token).unwrap();
            seen.extend(page.into_iter().map(|(_, id)| id));
            if next.is_empty() {
                return seen;
            }
            token = next;
        }
    }

    #[test]
    fn pages_cover_everything_once_in_order() {
        let items = vec![at(3, "c"), at(1, "a"), at(2, "b"), at(2, "bb")];
        assert_eq!(walk(&items, Order::OldestFirst, 1), ["a", "b", "bb", "c"]);
        assert_eq!(walk(&items, Order::NewestFirst, 3), ["c", "bb", "b", "a"]);
        let bad = page(items, |_| Position::new(None, "x"), Order::OldestFirst, 1, "garbage").unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    }
}
