//! `resptree ref set|get|list|delete`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::args::RefCommand;
use crate::context::Context;

/// Runs one ref subcommand.
pub(crate) fn run(ctx: &Context, command: RefCommand) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    match command {
        RefCommand::Set { name, target } => {
            let id = Context::resolve(&tree, &target)?;
            tree.set_ref(name.clone(), &id)?;
            super::print(&format!("{name} -> {}", ctx.style.id(id.as_str())))?;
        }
        RefCommand::Get { name, json } => {
            let id = tree.get_ref(&name)?;
            if json {
                super::print_json(&serde_json::json!({"name": name, "target": id}))?;
            } else {
                super::print(id.as_str())?;
            }
        }
        RefCommand::List(args) => {
            let refs = tree.list_refs();
            if args.json {
                let map: BTreeMap<_, _> = refs.into_iter().collect();
                super::print_json(&map)?;
            } else {
                let text: String = refs
                    .iter()
                    .map(|(name, id)| format!("{name}\t{}\n", ctx.style.id(id.as_str())))
                    .collect();
                super::print(&text)?;
            }
        }
        RefCommand::Delete { name } => {
            let was = tree.delete_ref(&name)?;
            super::print(&format!("deleted ref {name} (was {was})"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
