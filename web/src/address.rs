//! The page's address as a model, on the host: the tab, the view (host, filter, toggle, sort)
//! and the token a query string carries, and the query a view is written back as. `url.rs`
//! reads and writes the browser's address through these.

use crate::table::{Column, View};

/// The dashboard's views, switched by the tabs in the header (`?tab=projects`, `map`,
/// `ports`, …), in the order of the tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Projects,
    Sockets,
    Timeline,
    Map,
    Ports,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::Projects,
        Tab::Sockets,
        Tab::Timeline,
        Tab::Map,
        Tab::Ports,
    ];

    /// Its name in the URL (`?tab=`), and the stem of its tab's and panel's element ids.
    pub fn key(self) -> &'static str {
        match self {
            Tab::Projects => "projects",
            Tab::Sockets => "sockets",
            Tab::Timeline => "timeline",
            Tab::Map => "map",
            Tab::Ports => "ports",
        }
    }

    /// Its tab's text.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Projects => "Projects",
            Tab::Sockets => "Sockets",
            Tab::Timeline => "Timeline",
            Tab::Map => "Map",
            Tab::Ports => "Port space",
        }
    }

    fn from_key(key: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.key() == key)
    }

    /// The tab a key moves to from this one in the tab list (the ARIA tabs pattern): the arrows
    /// wrap around, Home and End go to the ends; `None` for any other key.
    pub fn after_key(self, key: &str) -> Option<Tab> {
        let at = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0);
        let last = Tab::ALL.len() - 1;
        let to = match key {
            "ArrowLeft" => at.checked_sub(1).unwrap_or(last),
            "ArrowRight" => (at + 1) % Tab::ALL.len(),
            "Home" => 0,
            "End" => last,
            _ => return None,
        };
        Some(Tab::ALL[to])
    }

    /// The tab a digit key opens: `1` the first, and so on.
    pub fn of_digit(key: &str) -> Option<Tab> {
        let n: usize = key.parse().ok()?;
        Tab::ALL.get(n.checked_sub(1)?).copied()
    }
}

/// What a query string (`?tab=…&q=…`, with or without its `?`) says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Address {
    /// The tab it names; `None` when it names none (the page then chooses).
    pub tab: Option<Tab>,
    /// The view it asks for; defaults for what it does not say.
    pub view: View,
    /// `?token=`, when present and not empty.
    pub token: Option<String>,
}

/// Reads a query string; what it says wrong (an unknown tab or column) is left at its default.
pub fn parse(search: &str) -> Address {
    let mut address = Address::default();
    let pairs = form_urlencoded::parse(search.strip_prefix('?').unwrap_or(search).as_bytes());
    for (key, value) in pairs {
        match &*key {
            "tab" => address.tab = Tab::from_key(&value),
            "token" if !value.is_empty() => address.token = Some(value.into_owned()),
            "host" if !value.is_empty() => address.view.host = Some(value.into_owned()),
            "q" => address.view.query = value.into_owned(),
            "listening" => address.view.listening_only = value == "1",
            "sort" => {
                if let Some(column) = Column::from_key(&value) {
                    address.view.sort = column;
                }
            }
            "desc" => address.view.descending = value == "1",
            _ => {}
        }
    }
    address
}

/// The query string (without `?`; empty for the defaults) that keeps `tab` (once the page chose
/// one) and `view`. Nothing else goes in it: the token never does.
pub fn query(tab: Option<Tab>, view: &View) -> String {
    let default = View::default();
    let mut out = form_urlencoded::Serializer::new(String::new());
    if let Some(tab) = tab {
        out.append_pair("tab", tab.key());
    }
    if let Some(host) = &view.host {
        out.append_pair("host", host);
    }
    if !view.query.is_empty() {
        out.append_pair("q", &view.query);
    }
    if view.listening_only {
        out.append_pair("listening", "1");
    }
    if view.sort != default.sort {
        out.append_pair("sort", view.sort.key());
    }
    if view.descending {
        out.append_pair("desc", "1");
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tab_keys_walk_the_tabs_and_wrap() {
        assert_eq!(Tab::Projects.after_key("ArrowLeft"), Some(Tab::Ports));
        assert_eq!(Tab::Ports.after_key("ArrowRight"), Some(Tab::Projects));
        assert_eq!(Tab::Sockets.after_key("ArrowRight"), Some(Tab::Timeline));
        assert_eq!(Tab::Timeline.after_key("ArrowLeft"), Some(Tab::Sockets));
        assert_eq!(Tab::Map.after_key("Home"), Some(Tab::Projects));
        assert_eq!(Tab::Sockets.after_key("End"), Some(Tab::Ports));
        assert_eq!(Tab::Sockets.after_key("Enter"), None);
        // Each tab is reached from its neighbour, the way a keyboard user walks them.
        for pair in Tab::ALL.windows(2) {
            assert_eq!(pair[0].after_key("ArrowRight"), Some(pair[1]));
            assert_eq!(pair[1].after_key("ArrowLeft"), Some(pair[0]));
        }
    }

    #[test]
    fn digits_open_the_tabs_in_order() {
        for (i, tab) in Tab::ALL.iter().enumerate() {
            assert_eq!(Tab::of_digit(&(i + 1).to_string()), Some(*tab));
        }
        assert_eq!(Tab::of_digit("0"), None);
        assert_eq!(Tab::of_digit("6"), None);
        assert_eq!(Tab::of_digit("x"), None);
    }

    #[test]
    fn a_query_is_read_with_its_defaults_and_written_back_without_the_token() {
        let a = parse(
            "?token=abc&tab=timeline&host=build-box&q=node%20dev&listening=1&sort=pid&desc=1&x=y",
        );
        assert_eq!(a.tab, Some(Tab::Timeline));
        assert_eq!(a.token.as_deref(), Some("abc"));
        assert_eq!(a.view.host.as_deref(), Some("build-box"));
        assert_eq!(a.view.query, "node dev");
        assert!(a.view.listening_only && a.view.descending);
        assert_eq!(a.view.sort, Column::Pid);
        let written = query(a.tab, &a.view);
        assert_eq!(
            written,
            "tab=timeline&host=build-box&q=node+dev&listening=1&sort=pid&desc=1"
        );
        assert_eq!(
            parse(&written).view,
            a.view,
            "a written view reads back the same"
        );
        assert_eq!(parse(&written).token, None);
    }

    #[test]
    fn what_a_query_gets_wrong_is_left_at_its_default() {
        let a = parse("tab=nope&sort=nope&host=&token=&listening=yes");
        assert_eq!(a, Address::default());
        assert_eq!(query(None, &View::default()), "");
        // A filter with the query's own characters survives the trip.
        let view = View {
            query: "a&b=c #d".into(),
            ..View::default()
        };
        assert_eq!(
            parse(&query(Some(Tab::Sockets), &view)).view.query,
            "a&b=c #d"
        );
    }
}
