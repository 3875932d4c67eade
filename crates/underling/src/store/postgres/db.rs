//! The store's pool as an executor that commits each statement before it returns when the pool
//! goes through PgBouncer in transaction mode (see [`crate::pgbouncer`]): there every checkout
//! opens a transaction, and what is not committed when the connection goes back is rolled back.

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Either, Execute, Executor, Postgres, SqlStr};

/// The pool, and whether checkouts are transactions to commit.
#[derive(Debug, Clone)]
pub(super) struct Db {
    pub(super) pool: PgPool,
    /// Through PgBouncer in transaction mode.
    bouncer: bool,
}

/// A pool connection for several statements; [`Conn::commit`] ends its work.
pub(super) struct Conn {
    conn: PoolConnection<Postgres>,
    bouncer: bool,
}

impl std::ops::Deref for Conn {
    type Target = PoolConnection<Postgres>;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl Conn {
    /// Commits the checkout's transaction through PgBouncer; nothing to do otherwise.
    pub(super) async fn commit(mut self) -> sqlx::Result<()> {
        if self.bouncer {
            self.conn.execute(sqlx::raw_sql("COMMIT")).await?;
        }
        Ok(())
    }
}

impl Db {
    pub(super) fn new(pool: PgPool, bouncer: bool) -> Self {
        Db { pool, bouncer }
    }

    /// A connection for several statements: call [`Conn::commit`] when they succeeded.
    pub(super) async fn acquire(&self) -> sqlx::Result<Conn> {
        Ok(Conn {
            conn: self.pool.acquire().await?,
            bouncer: self.bouncer,
        })
    }
}

impl<'p> Executor<'p> for &'_ Db {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, sqlx::Result<Either<PgQueryResult, PgRow>>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.bouncer {
            return self.pool.fetch_many(query);
        }
        // The rows are read to the end and the transaction committed before the first one is
        // handed on: no statement of the store returns more than a page.
        let db = self.clone();
        Box::pin(
            futures_util::stream::once(async move {
                let mut conn = db.acquire().await?;
                let items: Vec<_> = conn.fetch_many(query).try_collect().await?;
                conn.commit().await?;
                Ok::<_, sqlx::Error>(futures_util::stream::iter(items.into_iter().map(Ok)))
            })
            .try_flatten(),
        )
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<PgRow>>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.bouncer {
            return self.pool.fetch_optional(query);
        }
        let db = self.clone();
        Box::pin(async move {
            let mut conn = db.acquire().await?;
            let row = conn.fetch_optional(query).await?;
            conn.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<PgStatement>>
    where
        'p: 'e,
    {
        let pool = self.pool.clone();
        Box::pin(async move { pool.prepare_with(sql, parameters).await })
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, sqlx::Result<sqlx::Describe<Postgres>>> {
        let pool = self.pool.clone();
        Box::pin(async move { pool.acquire().await?.describe(sql).await })
    }
}
