use std::fmt;

/// The logged-in user of a browser session, as the [`SessionResolver`] found it.
///
/// Its id is the owner of the keys the user manages.
///
/// [`SessionResolver`]: super::SessionResolver
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionUser {
    id: String,
}

impl SessionUser {
    /// A user with this id.
    pub fn new(id: impl Into<String>) -> Self {
        SessionUser { id: id.into() }
    }

    /// The user's id: the owner of the keys they manage.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for SessionUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionUser").field("id", &self.id).finish()
    }
}

impl crate::middleware::Admitted for SessionUser {}
