//! `#[tool]`: turns a documented function into a toolhost tool.
//!
//! ```ignore
//! /// Get one issue: title, state, labels and body.
//! #[tool(read_only, idempotent, open_world)]
//! fn get_issue(cx: &Context, args: GetIssue) -> Result<Reply<Issue>> { … }
//! ```
//!
//! The function becomes a unit struct of the same name implementing
//! `toolhost_sdk::Tool`: its doc comment is the description, the argument
//! type's `JsonSchema` the input schema, and the `Ok` type (`String` for
//! text only, `Reply<T>` for text plus structured content) decides the
//! output schema. The body stays callable as `get_issue::run(…)` for tests.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{
    Expr, ExprLit, FnArg, GenericArgument, ItemFn, Lit, Meta, PathArguments, ReturnType, Token,
    Type,
};

#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

#[derive(Default)]
struct Hints {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
    title: Option<String>,
    name: Option<String>,
}

fn parse_hints(attr: proc_macro2::TokenStream) -> syn::Result<Hints> {
    let mut hints = Hints::default();
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    for meta in metas {
        match &meta {
            Meta::Path(path) if path.is_ident("read_only") => hints.read_only = true,
            Meta::Path(path) if path.is_ident("destructive") => hints.destructive = true,
            Meta::Path(path) if path.is_ident("idempotent") => hints.idempotent = true,
            Meta::Path(path) if path.is_ident("open_world") => hints.open_world = true,
            Meta::NameValue(nv) if nv.path.is_ident("title") || nv.path.is_ident("name") => {
                let Expr::Lit(ExprLit {
                    lit: Lit::Str(text),
                    ..
                }) = &nv.value
                else {
                    return Err(syn::Error::new_spanned(&nv.value, "expected a string"));
                };
                if nv.path.is_ident("title") {
                    hints.title = Some(text.value());
                } else {
                    hints.name = Some(text.value());
                }
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "expected read_only, destructive, idempotent, open_world, title = \"…\" or name = \"…\"",
                ));
            }
        }
    }
    if hints.read_only && hints.destructive {
        return Err(syn::Error::new(
            Span::call_site(),
            "a read_only tool cannot be destructive",
        ));
    }
    Ok(hints)
}

/// The doc comment, as written: one line per `///`, the single leading
/// space each carries removed.
fn description(function: &ItemFn) -> String {
    let lines: Vec<String> = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(text),
                    ..
                }) => Some(text.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').unwrap_or(&line).to_string())
        .collect();
    lines.join("\n").trim().to_string()
}

/// `T` of `Result<T>` or `Result<T, E>`.
fn ok_type(output: &ReturnType) -> syn::Result<Type> {
    let ReturnType::Type(_, ty) = output else {
        return Err(syn::Error::new_spanned(output, "a tool returns Result<…>"));
    };
    if let Type::Path(path) = &**ty
        && let Some(last) = path.path.segments.last()
        && last.ident == "Result"
        && let PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(GenericArgument::Type(ok)) = args.args.first()
    {
        return Ok(ok.clone());
    }
    Err(syn::Error::new_spanned(
        ty,
        "a tool returns Result<String> or Result<Reply<T>>",
    ))
}

fn expand(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let hints = parse_hints(attr)?;
    let function: ItemFn = syn::parse2(item)?;
    let ident = &function.sig.ident;
    let vis = &function.vis;
    let name = hints.name.clone().unwrap_or_else(|| ident.to_string());
    let description = description(&function);
    if description.is_empty() {
        return Err(syn::Error::new_spanned(
            ident,
            "document the tool: its doc comment is the description a model reads",
        ));
    }
    let inputs: Vec<&FnArg> = function.sig.inputs.iter().collect();
    let (takes_context, args_type) = match inputs.as_slice() {
        [FnArg::Typed(args)] => (false, (*args.ty).clone()),
        [FnArg::Typed(_), FnArg::Typed(args)] => (true, (*args.ty).clone()),
        _ => {
            return Err(syn::Error::new_spanned(
                &function.sig.inputs,
                "a tool takes (args: Args) or (cx: &Context, args: Args)",
            ));
        }
    };
    let ok = ok_type(&function.sig.output)?;
    let sig_inputs = &function.sig.inputs;
    let sig_output = &function.sig.output;
    let body = &function.block;
    let doc_attrs = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"));
    let title = match &hints.title {
        Some(title) => quote!(::core::option::Option::Some(#title)),
        None => quote!(::core::option::Option::None),
    };
    let (read_only, destructive, idempotent, open_world) = (
        hints.read_only,
        hints.destructive,
        hints.idempotent,
        hints.open_world,
    );
    let call = if takes_context {
        quote!(Self::run(cx, args))
    } else {
        quote!({
            let _ = cx;
            Self::run(args)
        })
    };
    Ok(quote! {
        #(#doc_attrs)*
        #[allow(non_camel_case_types)]
        #vis struct #ident;

        impl #ident {
            #vis fn run(#sig_inputs) #sig_output #body
        }

        impl ::toolhost_sdk::Tool for #ident {
            const NAME: &'static str = #name;

            fn spec() -> ::toolhost_sdk::ToolSpec {
                ::toolhost_sdk::ToolSpec {
                    name: #name,
                    title: #title,
                    description: #description,
                    input_schema: ::toolhost_sdk::__private::input_schema::<#args_type>(),
                    output_schema: <#ok as ::toolhost_sdk::IntoOutput>::output_schema(),
                    hints: ::toolhost_sdk::Hints {
                        read_only: #read_only,
                        destructive: #destructive,
                        idempotent: #idempotent,
                        open_world: #open_world,
                    },
                }
            }

            fn call(
                cx: &::toolhost_sdk::Context,
                arguments: &str,
            ) -> ::core::result::Result<::toolhost_sdk::Output, ::toolhost_sdk::ToolError> {
                let args: #args_type = ::toolhost_sdk::__private::parse_args(arguments)?;
                let ok = #call?;
                ::toolhost_sdk::IntoOutput::into_output(ok)
            }
        }
    })
}
