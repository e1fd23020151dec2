//! The OpenAPI document of the API, served at `/api/openapi.json`, generated from the handlers'
//! annotations and the types they return, so it cannot drift from the code.

use axum::Json;
use utoipa::OpenApi;

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hashmesh",
        description = "The hashmesh node API: fleet totals and history, the device table, one device in full, commands with read-back verification, the site map and live updates. Log in at /api/v1/auth/login (session cookie + X-CSRF-Token on writes) or send `Authorization: Bearer hm_…`. Errors are application/problem+json."
    ),
    paths(
        crate::auth::routes::login,
        crate::auth::routes::logout,
        crate::auth::routes::me,
        crate::auth::routes::list_users,
        crate::auth::routes::create_user,
        crate::auth::routes::update_user,
        crate::auth::routes::delete_user,
        crate::auth::routes::list_tokens,
        crate::auth::routes::create_token,
        crate::auth::routes::revoke_token,
        super::fleet::summary,
        super::fleet::history,
        super::devices::list,
        super::devices::facets,
        super::devices::detail,
        super::devices::history,
        super::jobs::command_one,
        super::jobs::command_many,
        super::jobs::get_job,
        super::jobs::list_jobs,
        super::sitemap::sitemap,
        super::ws::upgrade,
    ),
    tags(
        (name = "auth", description = "Sessions, users and API tokens"),
        (name = "fleet", description = "Totals, history and the site map"),
        (name = "devices", description = "The device table and single devices"),
        (name = "commands", description = "Commands, carried out as jobs and verified by reading state back"),
    )
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
