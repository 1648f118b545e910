//! `portscope mcp`: the doctor for coding assistants, over the Model Context Protocol on stdin
//! and stdout (the official Rust SDK, rmcp). Its tools are the CLI's commands with the same
//! arguments, answering what their `--json` prints as structured content with an output schema
//! ([`tools`]); each call is answered by the code the CLI runs ([`calls`]), from the running
//! agent's live model when one answers, else from a scan ([`live`]), and says which in its
//! `_meta` (`portscope/source`). A bad argument is a tool error that says what was expected;
//! the server goes on answering. Nothing is written to stdout but the protocol: logs go to
//! stderr, where assistants keep them.

mod calls;
mod live;
mod tools;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, MetaObject, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use crate::cli::McpArgs;

/// What an assistant is told about this server when it connects.
const INSTRUCTIONS: &str = "portscope answers questions about this machine's TCP and UDP \
    ports: who holds a port (`who`), why a connection fails (`why`), why a server cannot bind \
    (`bind`), which ports are free (`free`), whether a server is up (`wait`), who held a port \
    before (`history`), what is listening (`ls`) and who talks to whom (`graph`). Start with \
    `why` for \"connection refused\" and `bind` for \"address already in use\".";

/// Calls answered at once (each may scan the machine, and `why` or `wait` wait on connects);
/// more wait their turn, as the dashboard's doctor routes allow four.
const MAX_RUNNING: usize = 4;

/// The MCP server: its tools and where it reads the machine.
pub struct Server {
    agent: live::Agent,
    allow_kill: bool,
    tools: Arc<Vec<Tool>>,
    running: tokio::sync::Semaphore,
}

/// Serves one assistant on stdin and stdout until it closes them.
pub async fn run(args: McpArgs) -> anyhow::Result<()> {
    let server = Server {
        agent: live::Agent::default(),
        allow_kill: args.allow_kill,
        tools: Arc::new(tools::catalog(args.allow_kill)),
        running: tokio::sync::Semaphore::new(MAX_RUNNING),
    };
    tracing::info!(kill = args.allow_kill, "serving MCP on stdin and stdout");
    let service = server.serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("portscope", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let answered = async {
            let _turn = self.running.acquire().await;
            calls::call(self, &request.name, args).await
        };
        // A call the client cancels stops here (a stop already sent goes on in the background).
        let answer = tokio::select! {
            answer = answered => answer,
            () = context.ct.cancelled() => {
                return Err(ErrorData::internal_error("the call was cancelled", None));
            }
        };
        let result = match answer {
            Ok(answer) => {
                let meta = answer
                    .meta
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                    .collect();
                CallToolResult::structured(answer.value).with_meta(Some(MetaObject(meta)))
            }
            Err(unknown @ (calls::CallError::Unknown(_) | calls::CallError::NotOffered)) => {
                return Err(ErrorData::invalid_params(unknown.to_string(), None));
            }
            Err(e) => {
                tracing::info!(tool = %request.name, error = %e, "a tool call failed");
                CallToolResult::error(vec![ContentBlock::text(e.to_string())])
            }
        };
        Ok(result.into())
    }
}
