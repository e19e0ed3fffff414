FROM registry.test:5000/fx-base-b:testing
COPY shared/etc/b.conf /etc/b/
RUN chmod 0644 /etc/b/*