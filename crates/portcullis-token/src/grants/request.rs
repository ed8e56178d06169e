//! Token requests, parsed at the HTTP edge: `/oauth/token` builds them
//! from its form, the `/web/` endpoints from theirs and the refresh cookie.
//! Values are moved out of the form, not copied.

use portcullis_domain::{InvalidUsername, MalformedScope, Scopes, Username};
use secrecy::{ExposeSecret as _, SecretString};

use crate::GrantError;
use crate::form::Form;
use crate::password::Passwords;

/// Longest accepted device label, in characters.
const MAX_DEVICE_NAME: usize = 100;
/// Longest `otp` looked at (a recovery code with dashes and spaces).
const MAX_OTP: usize = 64;
/// Longest refresh token looked up.
pub(crate) const MAX_REFRESH_TOKEN: usize = 512;

/// A password grant request (RFC 6749 §4.3.2). `Debug` shows no password.
#[derive(Debug)]
pub(crate) struct PasswordGrant {
    /// The name as sent, parsed: looked up (and throttled) by its key, so
    /// `ALICE` and fullwidth `ａｌｉｃｅ` are `alice`. A name the rules
    /// refuse (spaces, control or format characters, …) cannot belong to
    /// any account: it is refused at once with `invalid_request`, which
    /// tells nothing about who exists, and changes nothing.
    pub(crate) username: Username,
    /// The password, at most the policy's length.
    pub(crate) password: SecretString,
    /// The requested scope (by default the client's default scope).
    pub(crate) scope: Option<Scopes>,
    /// RFC 8707 `resource`: the access token's audience, if not the default.
    pub(crate) resource: Option<String>,
    /// A label for the device: at most 100 characters, no control
    /// characters.
    pub(crate) device_name: Option<String>,
    /// The code of the user's second factor (an authenticator code or a
    /// recovery code), for a user who has one.
    pub(crate) otp: Option<SecretString>,
}

impl PasswordGrant {
    /// Takes the grant's parameters out of `form`.
    ///
    /// # Errors
    /// [`GrantError::InvalidRequest`] for a missing username or password,
    /// an overlong password (refused before any hashing: a long password
    /// must not buy CPU time), a username [`Username::parse`] refuses or a
    /// bad device name;
    /// [`GrantError::InvalidScope`] for a malformed scope.
    pub(crate) fn from_form(form: &mut Form, passwords: &Passwords) -> Result<Self, GrantError> {
        let username = form
            .take("username")
            .ok_or(GrantError::InvalidRequest("username is required"))?;
        let password = SecretString::from(
            form.take("password")
                .ok_or(GrantError::InvalidRequest("password is required"))?,
        );
        let username = match Username::parse(&username) {
            Ok(name) => name,
            Err(InvalidUsername::TooLong) => return Err(GrantError::InvalidRequest("username is too long")),
            Err(_) => return Err(GrantError::InvalidRequest("username is not valid")),
        };
        if !passwords.acceptable_length(password.expose_secret()) {
            return Err(GrantError::InvalidRequest("password is too long"));
        }
        let device_name = device_name(form)?;
        let otp = form.take("otp").filter(|o| !o.is_empty()).map(SecretString::from);
        if otp.as_ref().is_some_and(|o| o.expose_secret().len() > MAX_OTP) {
            return Err(GrantError::InvalidRequest("otp is too long"));
        }
        let scope = requested_scope(form).map_err(|_| GrantError::InvalidScope)?;
        Ok(Self {
            username,
            password,
            scope,
            resource: form.take("resource"),
            device_name,
            otp,
        })
    }
}

/// A refresh_token grant request (RFC 6749 §6). `Debug` shows no token.
#[derive(Debug)]
pub(crate) struct RefreshGrant {
    /// The refresh token presented (from the body, or a `/web/` cookie),
    /// at most [`MAX_REFRESH_TOKEN`] bytes.
    pub(crate) refresh_token: SecretString,
    /// The requested scope. A malformed one is refused only once the token
    /// is known to be live and unspent: a spent token sent with any scope
    /// still sets off reuse detection.
    pub(crate) scope: Result<Option<Scopes>, MalformedScope>,
    /// RFC 8707 `resource`: the access token's audience, if not the default.
    pub(crate) resource: Option<String>,
}

impl RefreshGrant {
    /// Takes the grant's parameters, the refresh token included, out of
    /// `form`.
    ///
    /// # Errors
    /// See [`RefreshGrant::with_token`];
    /// [`GrantError::InvalidRequest`] when there is no refresh token.
    pub(crate) fn from_form(form: &mut Form) -> Result<Self, GrantError> {
        let token = form
            .take("refresh_token")
            .ok_or(GrantError::InvalidRequest("refresh_token is required"))?;
        Self::with_token(token, form)
    }

    /// The grant of `token`, with the scope and resource of `form`.
    ///
    /// # Errors
    /// [`GrantError::InvalidGrant`] for a token too long to be one of ours.
    pub(crate) fn with_token(token: String, form: &mut Form) -> Result<Self, GrantError> {
        if token.len() > MAX_REFRESH_TOKEN {
            return Err(GrantError::InvalidGrant);
        }
        Ok(Self {
            refresh_token: SecretString::from(token),
            scope: requested_scope(form),
            resource: form.take("resource"),
        })
    }
}

/// The form's `scope`, parsed, if it has one.
fn requested_scope(form: &mut Form) -> Result<Option<Scopes>, MalformedScope> {
    form.take("scope").map(|s| Scopes::parse(&s)).transpose()
}

/// An authorization_code grant request (RFC 6749 §4.1.3, RFC 7636 §4.5).
/// `Debug` shows no code.
#[derive(Debug)]
pub(crate) struct CodeGrant {
    /// The code from the Authorization Challenge Endpoint.
    pub(crate) code: SecretString,
    /// The PKCE code verifier.
    pub(crate) code_verifier: SecretString,
    /// RFC 8707 `resource`: the access token's audience, if not the default.
    pub(crate) resource: Option<String>,
    /// A label for the device.
    pub(crate) device_name: Option<String>,
}

impl CodeGrant {
    /// Takes the grant's parameters out of `form`.
    ///
    /// # Errors
    /// [`GrantError::InvalidRequest`] for a missing code or verifier, a
    /// verifier not shaped as RFC 7636 §4.1 says or a bad device name;
    /// [`GrantError::InvalidGrant`] for a code too long to be one of ours.
    pub(crate) fn from_form(form: &mut Form) -> Result<Self, GrantError> {
        let code = form
            .take("code")
            .ok_or(GrantError::InvalidRequest("code is required"))?;
        let verifier = form
            .take("code_verifier")
            .ok_or(GrantError::InvalidRequest("code_verifier is required"))?;
        if !crate::pkce::is_verifier(&verifier) {
            return Err(GrantError::InvalidRequest(
                "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            ));
        }
        if code.len() > MAX_REFRESH_TOKEN {
            return Err(GrantError::InvalidGrant);
        }
        Ok(Self {
            code: SecretString::from(code),
            code_verifier: SecretString::from(verifier),
            resource: form.take("resource"),
            device_name: device_name(form)?,
        })
    }
}

/// A request to the Authorization Challenge Endpoint: the first one (a
/// password and a PKCE challenge), or the next one (the auth session and
/// the second factor's code). `Debug` shows no secret.
#[derive(Debug)]
pub(crate) enum ChallengeRequest {
    /// `username`, `password`, `code_challenge` (S256), optional `scope`.
    Start {
        /// The password check's parameters (no `otp`, `resource` or
        /// `device_name` here).
        sign_in: PasswordGrant,
        /// The PKCE challenge, S256.
        code_challenge: String,
    },
    /// `auth_session` and `otp`.
    Continue {
        /// The auth session of the answer to the first request.
        auth_session: SecretString,
        /// The authenticator code or a recovery code.
        otp: SecretString,
    },
}

impl ChallengeRequest {
    /// Takes the request's parameters out of `form`.
    ///
    /// # Errors
    /// [`GrantError::InvalidRequest`] for a missing or malformed parameter,
    /// a `response_type` other than `code`, a `code_challenge_method` other
    /// than `S256`, or `otp`, `resource` or `device_name` in a first
    /// request; [`GrantError::InvalidScope`]; [`GrantError::InvalidSession`]
    /// for an auth session too long to be one of ours.
    pub(crate) fn from_form(form: &mut Form, passwords: &Passwords) -> Result<Self, GrantError> {
        if form.take("response_type").is_some_and(|t| t != "code") {
            return Err(GrantError::InvalidRequest("response_type must be code"));
        }
        if let Some(session) = form.take("auth_session") {
            let otp = form
                .take("otp")
                .ok_or(GrantError::InvalidRequest("otp is required with auth_session"))?;
            if otp.len() > MAX_OTP {
                return Err(GrantError::InvalidRequest("otp is too long"));
            }
            if session.len() > MAX_REFRESH_TOKEN {
                return Err(GrantError::InvalidSession);
            }
            return Ok(Self::Continue {
                auth_session: SecretString::from(session),
                otp: SecretString::from(otp),
            });
        }
        let challenge = form
            .take("code_challenge")
            .ok_or(GrantError::InvalidRequest("code_challenge is required (PKCE, S256)"))?;
        if form.take("code_challenge_method").as_deref() != Some("S256") {
            return Err(GrantError::InvalidRequest("code_challenge_method must be S256"));
        }
        if !crate::pkce::is_s256_challenge(&challenge) {
            return Err(GrantError::InvalidRequest(
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            ));
        }
        let sign_in = PasswordGrant::from_form(form, passwords)?;
        if sign_in.otp.is_some() {
            return Err(GrantError::InvalidRequest(
                "otp goes with the auth_session of the answer to this request",
            ));
        }
        if sign_in.resource.is_some() || sign_in.device_name.is_some() {
            return Err(GrantError::InvalidRequest(
                "resource and device_name go with the token request",
            ));
        }
        Ok(Self::Start {
            sign_in,
            code_challenge: challenge,
        })
    }
}

/// The form's `device_name`: at most 100 characters, no control
/// characters.
fn device_name(form: &mut Form) -> Result<Option<String>, GrantError> {
    let device_name = form.take("device_name");
    if device_name
        .as_deref()
        .is_some_and(|d| d.chars().count() > MAX_DEVICE_NAME || d.chars().any(char::is_control))
    {
        return Err(GrantError::InvalidRequest(
            "device_name is too long or has control characters",
        ));
    }
    Ok(device_name)
}
