// A smoke run of @aws-sdk/client-sqs against a Burrow server (run by
// tests/sqs/test_javascript.py): create a queue, send with attributes (one and a batch),
// receive, delete, and see the queue empty. The SDK checks every MD5 of a body and
// throws on a mismatch; the attributes' digest is checked here as the Java SDK checks it.
//
// Usage: node smoke.mjs ENDPOINT ACCOUNT. Prints what it received as JSON; exits 1 on
// any failure.
import { createHash } from "node:crypto";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";

const [endpoint, account] = process.argv.slice(2);
const sqs = new SQSClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: account, secretAccessKey: "unused-with-auth-none" },
  maxAttempts: 1,
});

const attributes = {
  colour: { DataType: "String", StringValue: "blue ✓" },
  count: { DataType: "Number", StringValue: "42" },
  picture: { DataType: "Binary.gif", BinaryValue: Uint8Array.from([71, 73, 70, 0, 255]) },
};

// SQS's digest of message attributes: by name, each of name, type and value as a 4-byte
// big-endian length and its bytes, a transport byte (1 text, 2 binary) before the value.
function attributesDigest(given) {
  const hash = createHash("md5");
  const withLength = (bytes) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  };
  for (const name of Object.keys(given).sort()) {
    const { DataType, StringValue, BinaryValue } = given[name];
    withLength(Buffer.from(name));
    withLength(Buffer.from(DataType));
    const binary = DataType.split(".")[0] === "Binary";
    hash.update(Buffer.from([binary ? 2 : 1]));
    withLength(binary ? Buffer.from(BinaryValue) : Buffer.from(StringValue));
  }
  return hash.digest("hex");
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function main() {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "js-smoke" }));
  check(QueueUrl === `${endpoint}/${account}/js-smoke`, `queue URL ${QueueUrl}`);

  const sent = await sqs.send(
    new SendMessageCommand({ QueueUrl, MessageBody: "hello from node 🦡", MessageAttributes: attributes }),
  );
  check(sent.MD5OfMessageAttributes === attributesDigest(attributes), "sent attributes' digest");
  const batch = await sqs.send(
    new SendMessageBatchCommand({
      QueueUrl,
      Entries: [
        { Id: "one", MessageBody: "batch one" },
        { Id: "two", MessageBody: "batch two", MessageAttributes: attributes },
      ],
    }),
  );
  check(batch.Successful.length === 2 && !batch.Failed?.length, "batch sent whole");

  const received = [];
  const deadline = Date.now() + 10_000;
  while (received.length < 3 && Date.now() < deadline) {
    const answer = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
    );
    received.push(...(answer.Messages ?? []));
  }
  check(received.length === 3, `3 messages received, not ${received.length}`);
  for (const message of received) {
    check(message.Attributes.ApproximateReceiveCount === "1", "first receive");
    if (message.MessageAttributes) {
      check(message.MD5OfMessageAttributes === attributesDigest(message.MessageAttributes),
        `received attributes' digest of ${message.MessageId}`);
    }
  }

  const [first, ...rest] = received;
  await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: first.ReceiptHandle }));
  const deleted = await sqs.send(
    new DeleteMessageBatchCommand({
      QueueUrl,
      Entries: rest.map((message, n) => ({ Id: `m${n}`, ReceiptHandle: message.ReceiptHandle })),
    }),
  );
  check(deleted.Successful.length === 2 && !deleted.Failed?.length, "batch deleted whole");
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  check(
    Attributes.ApproximateNumberOfMessages === "0" &&
      Attributes.ApproximateNumberOfMessagesNotVisible === "0",
    `queue empty: ${JSON.stringify(Attributes)}`,
  );

  const shown = received.map((message) => ({
    body: message.Body,
    attributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
        name,
        value.StringValue ?? Buffer.from(value.BinaryValue).toString("base64"),
      ]),
    ),
  }));
  console.log(JSON.stringify({ sent: sent.MessageId, received: shown }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
