"""The error catalogue: stable codes, HTTP statuses and Chinese messages (docs/errors.md lists them).

Rules: every refusal the platform gives a customer is a ``QxError`` with a code from ``CATALOGUE``;
the message shown to customers is Chinese first. API handlers turn a QxError into
``{"code": ..., "message": ...}`` with the catalogue's HTTP status, never a stack trace.
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, Chinese message)
CATALOGUE: dict[str, tuple[int, str]] = {
    # request and authentication
    "INVALID_REQUEST": (400, "请求格式错误"),
    "INVALID_JSON": (400, "请求体不是合法的 JSON"),
    "BODY_TOO_LARGE": (413, "请求体过大"),
    "AUTH_MISSING": (401, "缺少签名请求头"),
    "APPKEY_INVALID": (401, "AppKey 不存在或已停用"),
    "SIGNATURE_INVALID": (401, "请求签名校验失败"),
    "TIMESTAMP_EXPIRED": (401, "请求时间戳超出允许范围（±300 秒）"),
    "NONCE_REPLAYED": (401, "随机数已使用，疑似重放请求"),
    "IP_FORBIDDEN": (403, "来源 IP 不在白名单内"),
    "ACCOUNT_FROZEN": (403, "账户已冻结，无法发送"),
    "FREE_TEXT_FORBIDDEN": (403, "账户未开通自定义内容发送，请使用模板"),
    "NOT_FOUND": (404, "资源不存在"),
    "METHOD_NOT_ALLOWED": (405, "请求方法不被允许"),
    "STAFF_AUTH_REQUIRED": (401, "需要员工令牌（Authorization: Bearer …）"),
    "STAFF_TOKEN_INVALID": (401, "员工令牌无效或已停用"),
    "FORBIDDEN": (403, "无权执行此操作"),
    "CONFLICT": (409, "资源已存在"),
    # content and numbers
    "SIGNATURE_NOT_APPROVED": (400, "短信签名不存在或未审核通过"),
    "TEMPLATE_NOT_APPROVED": (400, "模板不存在或未审核通过"),
    "TEMPLATE_PARAM_MISSING": (400, "模板变量缺失"),
    "TEMPLATE_PARAM_INVALID": (400, "模板变量不符合类型要求"),
    "TEMPLATE_PARAM_UNKNOWN": (400, "模板中没有这个变量"),
    "TEMPLATE_SYNTAX": (400, "模板变量写法错误，应为 ${name}"),
    "TEMPLATE_VAR_UNDECLARED": (400, "模板变量未声明类型"),
    "TEMPLATE_VAR_TYPE_INVALID": (400, "模板变量类型不受支持"),
    "CONTENT_EMPTY": (400, "短信内容为空"),
    "CONTENT_TOO_LONG": (400, "短信内容超过最大长度"),
    "TYPE_INVALID": (400, "短信类型必须是 verification、notification 或 marketing"),
    "NUMBERS_EMPTY": (400, "没有接收号码"),
    "TOO_MANY_NUMBERS": (400, "单次请求号码数量超过上限"),
    "NUMBER_INVALID": (400, "号码格式错误"),
    "NUMBER_DUPLICATE": (400, "号码重复"),
    "TOKEN_UNKNOWN": (400, "隐私号码令牌不存在"),
    "TOKEN_EXPIRED": (400, "隐私号码令牌已过期"),
    "NUMBER_EMPTY_SKIPPED": (400, "号码检测为空号，已按要求跳过"),
    "NUMBER_SILENT_SKIPPED": (400, "号码检测为沉默号，已按要求跳过"),
    "NO_VALID_NUMBERS": (400, "没有可发送的有效号码"),
    "SEND_AT_INVALID": (400, "定时发送时间格式错误"),
    "SEND_AT_TOO_FAR": (400, "定时发送时间超出允许范围（最多 90 天后）"),
    # compliance (issue 4, docs/compliance.md)
    "CONTENT_FORBIDDEN": (400, "内容含有违禁词，不允许发送"),
    "CONTENT_SPECIAL_CHAR": (400, "内容含有不支持的特殊字符"),
    "UNSUBSCRIBE_MISSING": (400, "营销短信须在末尾注明退订方式"),
    "LINK_FORBIDDEN": (400, "内容中的链接不被允许"),
    "VERIFICATION_KEYWORD_MISSING": (400, "验证码短信须包含“验证码”“校验码”“动态码”或“注册码”"),
    "CONTENT_CLASSIFIED": (400, "内容经识别属于违规类别，不允许发送"),
    "CONTENT_TYPE_MISMATCH": (400, "内容属于营销推广，不能以通知或验证码类型发送"),
    "VERIFICATION_CODE_MISSING": (400, "验证码短信须包含 4–8 位验证码"),
    "REVIEW_DECIDED": (409, "该批次已审核或已过期"),
    "REVIEW_REJECTED": (400, "内容未通过人工审核，已退款"),
    "REVIEW_EXPIRED": (400, "人工审核超时未处理，已退款"),
    "AUDIENCE_REQUIRED": (400, "营销短信须填写发送对象说明（audience）"),
    "OPTED_OUT": (400, "该号码已退订"),
    "BLACKLISTED": (400, "该号码在黑名单中"),
    "RATE_LIMITED": (400, "该号码发送过于频繁，已超过频率限制"),
    "NUMBER_RANGE_FORBIDDEN": (400, "禁止号段群发：号码属于连续号段"),
    "INTERNATIONAL_NOT_ALLOWED": (400, "账户未开通国际短信"),
    "SIGNATURE_NAME_INVALID": (400, "签名名称不符合规范"),
    "TEMPLATE_REVIEW_FAILED": (400, "模板不符合审核规则"),
    "LEXICON_INVALID": (400, "词库修改无效"),
    "DOCUMENT_INVALID": (400, "资质文件无效"),
    # flow control (services/flow.py, docs/api.md "Flow control")
    "ACCOUNT_THROTTLED": (429, "账户发送速度超过每秒上限，请稍后重试"),
    "DAILY_CAP_EXCEEDED": (429, "账户今日发送量已达上限"),
    # money
    "INSUFFICIENT_BALANCE": (402, "余额不足，整批拒绝"),
    "IDEMPOTENCY_CONFLICT": (409, "幂等键已用于不同的请求"),
    "TOPUP_DUPLICATE": (409, "该充值单号已入账，不会重复充值"),
    "TOPUP_BELOW_MINIMUM": (400, "充值金额低于账户约定的最低充值金额"),
    "BALANCE_EXPIRED": (402, "账户余额已过有效期，请充值后再发送"),
    "PACKAGE_DUPLICATE": (409, "该套餐单号已存在"),
    "PRICE_NOTICE_TOO_SHORT": (400, "调价生效时间距今短于约定的通知期"),
    "PRICE_NOT_SET": (400, "该产品尚未定价"),
    "STATEMENT_NOT_READY": (400, "账期尚未结束，不能出对账单"),
    "STATEMENT_NOT_DISPUTABLE": (409, "对账单已确认或已过异议期"),
    # delivery (platform-side failures, recorded on messages)
    "SUBMIT_REJECTED": (502, "通道拒绝提交"),
    "NO_ROUTE": (503, "没有可用通道"),
    "RECEIPT_TIMEOUT": (504, "状态报告超时未返回"),
    # customer ports (direct connections, docs/protocols.md "Customer ports")
    "LOGIN_INVALID": (401, "直连账号不存在或密码错误"),
    "CONNECTION_DISABLED": (403, "直连账号已停用"),
    "CONNECTIONS_EXCEEDED": (429, "直连账号的连接数已达上限"),
    "CONNECTION_THROTTLED": (429, "直连账号提交速度超过 TPS 上限"),
    "PARTS_INCOMPLETE": (400, "长短信分段未在时限内到齐，整条未发送"),
    # file jobs (services/filejobs.py, docs/api.md "POST /v1/batches")
    "FILE_INVALID": (400, "文件无法读取：支持 CSV、XLSX、TXT 或粘贴的号码"),
    "FILE_TOO_LARGE": (413, "文件超过大小上限"),
    "FILE_TOO_MANY_NUMBERS": (400, "文件号码数量超过上限"),
    "FILE_COLUMN_UNKNOWN": (400, "文件中没有指定的列"),
    "FILE_JOB_NOT_FOUND": (404, "文件发送任务不存在"),
    "FILE_JOB_FINISHED": (409, "文件发送任务已结束"),
    # export jobs (services/exports.py, docs/api.md "Export jobs")
    "EXPORT_JOB_NOT_FOUND": (404, "导出任务不存在"),
    "EXPORT_NOT_READY": (409, "导出尚未完成，请稍后下载"),
    # console login (services/console_users.py)
    "LOGIN_FAILED": (401, "手机号或密码错误"),
    "LOGIN_LOCKED": (423, "登录失败次数过多，账号已锁定"),
    "LOGIN_IP_FORBIDDEN": (403, "当前 IP 不在账户允许的登录范围内"),
    "LOGIN_CODE_INVALID": (401, "短信验证码错误或已过期"),
    "SESSION_EXPIRED": (401, "登录已过期，请重新登录"),
    "PASSWORD_WEAK": (400, "密码不符合要求"),
    "CSRF_INVALID": (403, "页面已过期或请求来源不可信（CSRF 校验失败），请刷新页面后重试"),
    "READ_ONLY": (403, "只读查看模式：不能执行修改操作"),
    # generic
    "SERVICE_UNAVAILABLE": (503, "服务暂时不可用（数据库连接中断），请稍后重试"),
    "INTERNAL_ERROR": (500, "服务器内部错误"),
}


class QxError(Exception):
    """A refusal with a stable code. Raised before any write in a database job (see store/db.py)."""

    def __init__(self, code: str, message: str | None = None, **detail: Any) -> None:
        status, default = CATALOGUE.get(code, (400, code))
        self.code = code
        self.status = status
        self.message = message or default
        self.detail = detail
        super().__init__(f"{code}: {self.message}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            out.update(self.detail)
        return out
