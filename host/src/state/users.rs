//! The people who may sign in at the embedded issuer: names, password
//! hashes (PHC strings; hashing and checking are the issuer's) and groups.
//! In the database so every replica sees one list, and a user added,
//! regrouped or removed anywhere counts at the next sign-in or refresh on
//! every replica.

use super::{Durable, StateError, to_sql, unix_now};

/// One user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    /// `$argon2id$…`: never the password itself.
    pub password: String,
    pub groups: Vec<String>,
}

type Row = (String, String, String);

fn from_row((name, password, groups): Row) -> Result<UserRecord, StateError> {
    Ok(UserRecord {
        groups: serde_json::from_str(&groups)
            .map_err(|e| StateError::Corrupt(format!("groups of user {name}: {e}")))?,
        name,
        password,
    })
}

fn groups_json(groups: &[String]) -> Result<String, StateError> {
    serde_json::to_string(groups).map_err(|e| StateError::Corrupt(e.to_string()))
}

/// Inserts `user` unless the name is taken; whether it did.
async fn insert_if_absent(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: &UserRecord,
    now: i64,
) -> Result<bool, StateError> {
    let done = sqlx::query(
        "INSERT INTO users (name, password, groups, created, updated) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&user.name)
    .bind(&user.password)
    .bind(groups_json(&user.groups)?)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Durable {
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>, StateError> {
        let row: Option<Row> =
            sqlx::query_as("SELECT name, password, groups FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.map(from_row).transpose()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StateError> {
        let rows: Vec<Row> =
            sqlx::query_as("SELECT name, password, groups FROM users ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Adds the user, or replaces their password and groups.
    pub async fn put_user(&self, user: &UserRecord) -> Result<(), StateError> {
        let now = to_sql(unix_now());
        sqlx::query(
            "INSERT INTO users (name, password, groups, created, updated) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (name) DO UPDATE SET password = excluded.password, \
             groups = excluded.groups, updated = excluded.updated",
        )
        .bind(&user.name)
        .bind(&user.password)
        .bind(groups_json(&user.groups)?)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether anybody may sign in yet.
    pub async fn has_users(&self) -> Result<bool, StateError> {
        let anyone: Option<String> = sqlx::query_scalar("SELECT name FROM users LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(anyone.is_some())
    }

    /// Adds `user` only if there is nobody yet: replicas starting together
    /// on an empty database create one first user, not one each.
    pub async fn add_first_user(&self, user: &UserRecord) -> Result<bool, StateError> {
        let mut tx = self.write().await?;
        let anyone: Option<String> = sqlx::query_scalar("SELECT name FROM users LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if anyone.is_some() {
            return Ok(false);
        }
        let added = insert_if_absent(&mut tx, user, to_sql(unix_now())).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Adds each user not present yet (an import never overwrites what an
    /// operator changed since); returns how many were added.
    pub async fn add_missing_users(&self, users: &[UserRecord]) -> Result<usize, StateError> {
        let now = to_sql(unix_now());
        let mut tx = self.write().await?;
        let mut added = 0;
        for user in users {
            added += usize::from(insert_if_absent(&mut tx, user, now).await?);
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Replaces the user's groups; `false` if there is no such user.
    pub async fn set_user_groups(&self, name: &str, groups: &[String]) -> Result<bool, StateError> {
        let done = sqlx::query("UPDATE users SET groups = $1, updated = $2 WHERE name = $3")
            .bind(groups_json(groups)?)
            .bind(to_sql(unix_now()))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the user; `false` if there was none of that name.
    pub async fn remove_user(&self, name: &str) -> Result<bool, StateError> {
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::scratch;

    fn user(name: &str, groups: &[&str]) -> UserRecord {
        UserRecord {
            name: name.into(),
            password: format!("$argon2id$hash-of-{name}"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn users_are_added_changed_listed_and_removed() {
        let s = scratch().await;
        assert!(
            s.durable
                .add_first_user(&user("admin", &[]))
                .await
                .expect("first")
        );
        assert!(
            !s.durable
                .add_first_user(&user("other", &[]))
                .await
                .expect("second"),
            "only into an empty table"
        );
        s.durable
            .put_user(&user("ana", &["dev"]))
            .await
            .expect("add");
        s.durable
            .put_user(&user("ana", &["dev", "ops"]))
            .await
            .expect("change");
        assert_eq!(
            s.durable.user("ana").await.expect("read"),
            Some(user("ana", &["dev", "ops"]))
        );
        let imported = [user("ana", &[]), user("bo", &["qa"])];
        assert_eq!(
            s.durable
                .add_missing_users(&imported)
                .await
                .expect("import"),
            1
        );
        assert_eq!(
            s.durable.user("ana").await.expect("read").map(|u| u.groups),
            Some(vec!["dev".to_string(), "ops".to_string()]),
            "an import keeps what is there"
        );
        let names: Vec<String> = s
            .durable
            .users()
            .await
            .expect("list")
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["admin", "ana", "bo"]);
        assert!(
            s.durable
                .set_user_groups("bo", &["ops".to_string()])
                .await
                .expect("regroup")
        );
        assert!(
            !s.durable
                .set_user_groups("nobody", &[])
                .await
                .expect("none")
        );
        assert_eq!(
            s.durable.user("bo").await.expect("read").map(|u| u.groups),
            Some(vec!["ops".to_string()])
        );
        assert!(s.durable.remove_user("bo").await.expect("remove"));
        assert!(!s.durable.remove_user("bo").await.expect("twice"));
        assert_eq!(s.durable.user("bo").await.expect("read"), None);
    }
}
